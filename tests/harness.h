/*
 * harness: helpers for the Criterion integration tests (tests/it_*.c), which
 * run the real gateway binary against tests/stub/upstream.c over real
 * sockets.
 *
 * Use the fixture on every suite:
 *
 *   TestSuite(it_x, .init = hx_init, .fini = hx_fini, .timeout = 60);
 *
 * Criterion runs each test in its own process, so the harness keeps its
 * state per test: a temp dir, the children it started and everything it
 * handed out. hx_fini stops the children, frees all of it and removes the
 * temp dir (kept, and its path logged, when GW_KEEP=1).
 *
 * Paths come from the environment: GW_BIN (default build/gateway), GW_STUB
 * (default build/tests/upstream_stub), GW_DATA (default tests/data).
 * Certificates come from certs/make-dev-certs.sh, found from the working
 * dir, so run the tests from the repository root (see "TLS" below).
 *
 * Errors: a helper that sets the stage (temp dir, files, starting the stub
 * or the gateway, stub control) fails the test with cr_assert_fail and a
 * message that says what broke, since a test cannot go on without it. A
 * helper whose outcome may be the thing under test (HTTP calls, raw
 * sockets, waits, process exit) returns the outcome and never fails the
 * test itself.
 *
 * Ownership: pointers the harness returns (responses, JSON, strings, the
 * process, stub and gateway structs) are owned by the harness and stay
 * valid until teardown. Do not free or json_decref them; hx_resp_free may
 * release a response early. Ports, timeouts and sizes are ints in ms/bytes.
 */
#ifndef GW_TESTS_HARNESS_H
#define GW_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define HX_PATH_MAX 512

/* ---- fixture ---- */

/* Criterion .init: resets the per-test state. */
void hx_init(void);

/* Criterion .fini: stops every child still running, frees what the harness
 * handed out, removes the temp dir unless GW_KEEP=1. A child marked
 * must_exit_clean (every gateway started by hx_gw_launch) that exited with
 * a status other than 0, a sanitizer report say, fails the test. */
void hx_fini(void);

/* The test's own temp dir, made on first use (mkdtemp under $TMPDIR or
 * /tmp). Fails the test if it cannot be made. */
const char *hx_tmpdir(void);

/* hx_tmpdir() + "/" + name. */
const char *hx_path(const char *name);

/* printf into a string the harness owns. */
const char *hx_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* $GW_BIN, $GW_STUB and $GW_DATA, or their defaults. */
const char *hx_gw_bin(void);
const char *hx_stub_bin(void);
const char *hx_data_dir(void);

/* ---- child processes ---- */

struct hx_proc {
	pid_t pid;  /* -1 once reaped */
	int status; /* once reaped: the exit code, or 128 + signal; else -1 */
	char name[32];
	char out_path[HX_PATH_MAX]; /* the child's stdout, appended to */
	char err_path[HX_PATH_MAX]; /* the child's stderr, appended to */
	bool must_exit_clean;       /* teardown fails the test unless it exits 0 */
};

/*
 * Starts argv (argv[0] a path, resolved to an absolute one) in a new process
 * group, with stdin from /dev/null, stdout and stderr appended to
 * <tmp>/<name>.stdout and <tmp>/<name>.stderr, the temp dir as its working
 * dir, and SIGKILL sent to it if the test process dies. Fails the test if it
 * cannot fork or exec (exec failure shows in the stderr file and as exit
 * status 127).
 */
struct hx_proc *hx_proc_start(const char *name, const char *const argv[]);

/* SIGTERM, up to 5 s for it to exit, then SIGKILL to its group. Returns
 * p->status (0 for a clean exit); stopping a reaped child just returns it. */
int hx_proc_stop(struct hx_proc *p);

/* Waits up to timeout_ms for the child to exit by itself. Returns its status,
 * or -1 if it is still running. */
int hx_proc_wait(struct hx_proc *p, int timeout_ms);

/* Whether the child is still running (reaps it if it is not). */
bool hx_proc_alive(struct hx_proc *p);

/* A field of /proc/PID/status in kB ("VmRSS", "VmHWM"); -1 when absent. */
long hx_proc_kb(pid_t pid, const char *field);

/* ---- ports and files ---- */

/* A loopback port that was free a moment ago (bind to port 0, then close). */
int hx_free_port(void);

/* Polls until 127.0.0.1:port accepts a connection. 0, or -1 on timeout. */
int hx_wait_port(int port, int timeout_ms);

/* Polls until path exists and is not empty. 0, or -1 on timeout. */
int hx_wait_file(const char *path, int timeout_ms);

/* The whole file, NUL-terminated (len may be NULL), or NULL if it cannot be
 * read. At most 256 MiB. */
const char *hx_read_file(const char *path, size_t *len);

/* Writes text to path, replacing it. Fails the test on error. */
void hx_write_file(const char *path, const char *text);

/* Whether the file holds needle (bytes, not just text). False if the file
 * cannot be read. For secret-leak checks over logs. */
bool hx_file_contains(const char *path, const char *needle);

/* Sleeps ms milliseconds, through signals. */
void hx_sleep_ms(int ms);

/* o[key] if it is a string (borrowed), else NULL. */
const char *hx_str(const json_t *o, const char *key);

/* Polls until the file holds needle; false after timeout_ms. */
bool hx_wait_contains(const char *path, const char *needle, int timeout_ms);

/* The SHA-256 hex of a key, as `gateway hash-key` prints it and
 * tenants.*.api_keys_sha256 lists it. */
const char *hx_key_digest(const char *key);

/* Parses JSON text; fails the test if it is not JSON. */
json_t *hx_json(const char *text);

/* ---- upstream stub ---- */

struct hx_stub {
	struct hx_proc *proc;
	int port;
	char url[64]; /* "http://127.0.0.1:PORT"; a TLS stub's is "https://NAME:PORT" */
	/* A TLS stub's only (empty strings otherwise), for reaching it by hand
	 * as the control calls do: */
	char ca_file[HX_PATH_MAX]; /* the CA its certificate is trusted by */
	char connect_to[128];      /* "NAME:PORT:127.0.0.1:PORT", for hx_req.connect_to */
};

/* Starts an upstream_stub on a kernel-chosen port and waits until it
 * accepts. The hx_stub_* calls below then talk to it. */
struct hx_stub *hx_stub_start(void);

/* The recorded requests, oldest first: [{"method","uri","headers",
 * "body" | "body_b64","body_len"[,"aborted"]}]. These control calls go to
 * the stub started last, over HTTPS when it is a TLS stub (hx_stub_start_tls),
 * verified against its CA. */
json_t *hx_stub_requests(void);

/* Clears the record. */
void hx_stub_clear(void);

/* Queues a scripted behaviour (an object or an array of them), e.g.
 * {"status":503,"json":{...},"headers":{"Retry-After":"2"},"repeat":2},
 * {"delay_ms":500}, {"action":"close"}, {"action":"hang"}. */
void hx_stub_next(const char *json);

/* Clears the queue of behaviours. */
void hx_stub_next_clear(void);

/* A recorded request's body bytes, whichever way they were recorded, and
 * their length; NULL if the record has no body field. */
const char *hx_record_body(json_t *record, size_t *len);

/* ---- HTTP ---- */

struct hx_header {
	char *name;
	char *value;
};

struct hx_resp {
	long status;               /* 0 when no HTTP response arrived */
	char *body;                /* NUL-terminated copy of the body */
	size_t len;                /* its length, not counting the NUL */
	struct hx_header *headers; /* the final response's, in order */
	size_t nheaders;
	char error[256]; /* libcurl's message when the transfer failed */
	json_t *json_;   /* hx_resp_json's cache */
};

/* One multipart/form-data part, sent with curl's mime API. */
struct hx_part {
	const char *name;
	const char *filename; /* NULL: not a file part */
	const char *type;     /* NULL: curl's default */
	const void *data;
	size_t len;
};

struct hx_req {
	const char *method; /* NULL: "GET" */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value"; "Name:" removes one */
	const void *body;           /* NULL: none (POST/PUT/PATCH still send Content-Length: 0) */
	size_t len;
	const struct hx_part *parts; /* instead of body */
	size_t nparts;
	long timeout_ms;    /* 0: 10 s */
	const char *cainfo; /* CA bundle for https, or NULL */
	/* "HOST:PORT:ADDR:PORT" (CURLOPT_CONNECT_TO): connect to ADDR:PORT
	 * for a URL naming HOST:PORT, which TLS still verifies as HOST. NULL:
	 * none. */
	const char *connect_to;
	/* A client certificate and its key (PEM) for mutual TLS; NULL: none. */
	const char *client_cert;
	const char *client_key;
	/* CURLOPT_SSLVERSION (e.g. CURL_SSLVERSION_TLSv1_2 |
	 * CURL_SSLVERSION_MAX_TLSv1_2); 0: libcurl's default. */
	long ssl_version;
};

/*
 * Performs one request. A body without a Content-Type header among headers
 * goes out as application/json (pass "Content-Type:" to send none). Never
 * fails the test: a transport error gives status 0 and error.
 */
struct hx_resp *hx_request(const struct hx_req *rq);

/* hx_request with the common fields. */
struct hx_resp *hx_http(const char *method, const char *url, const char *const *headers,
                        const void *body, size_t len);

/* The first value of a response header (case-insensitive name), or NULL. */
const char *hx_resp_header(const struct hx_resp *r, const char *name);

/* The body parsed as JSON (borrowed, cached), or NULL if it is not JSON. */
json_t *hx_resp_json(struct hx_resp *r);

/* Releases a response before teardown; NULL is fine. */
void hx_resp_free(struct hx_resp *r);

#define HX_RAW_SHUT_WR 1 /* half-close after sending */

/*
 * Connects to 127.0.0.1:port, sends len bytes of data, and returns all that
 * comes back until the peer closes or timeout_ms pass since the start
 * (whatever arrived by then), NUL-terminated, with its length in *out_len.
 * NULL if the connection cannot be made. For malformed-HTTP tests.
 */
/*
 * A raw connection kept open across calls, for requests that must be in
 * flight while something else happens (a signal, another client):
 * hx_raw_open connects to 127.0.0.1:port and sends len bytes without
 * waiting (-1 when it cannot connect); hx_raw_send sends more (0, or -1
 * when the peer is gone); hx_raw_read returns what arrives until the peer
 * closes or timeout_ms pass, NUL-terminated (owned by the harness);
 * hx_raw_close closes it early. Teardown closes what is still open.
 */
int hx_raw_open(int port, const void *data, size_t len);
int hx_raw_send(int fd, const void *data, size_t len);
const char *hx_raw_read(int fd, int timeout_ms, size_t *out_len);
void hx_raw_close(int fd);

const char *hx_raw(int port, const void *data, size_t len, int timeout_ms, int flags,
                   size_t *out_len);

/* ---- the gateway ---- */

struct hx_gw {
	char url[64]; /* "http://127.0.0.1:PORT" */
	int port;
	struct hx_stub *stub;
	int stub_port;
	const char *dir; /* the temp dir */
	char config_path[HX_PATH_MAX];
	char policy_path[HX_PATH_MAX];
	char audit_path[HX_PATH_MAX];
	char out_path[HX_PATH_MAX];
	char err_path[HX_PATH_MAX];
	json_t *config;       /* the config as written */
	struct hx_proc *proc; /* NULL until launched */
	char proc_name[32];   /* its logs: <tmp>/<proc_name>.stdout and .stderr */
};

/*
 * Starts a stub, writes <tmp>/policy.json (policy_json verbatim; NULL
 * writes {}) and <tmp>/gateway.json:
 *
 *   {"listen":"127.0.0.1:<free port>",
 *    "upstream":{"base_url":"http://127.0.0.1:<stub port>/v1",
 *                "timeout_ms":3000,"connect_timeout_ms":1000},
 *    "audit":{"path":"audit.log"},"policy_file":"policy.json"}
 *
 * deep-merged with config_overrides_json (objects merge key by key, other
 * values replace, null deletes the key; NULL: none). Either argument may be
 * "@name" to read tests/data/name ($GW_DATA) instead. Does not start the
 * gateway, so a test can start it its own way.
 */
struct hx_gw *hx_gw_prepare(const char *policy_json, const char *config_overrides_json);

/* Starts $GW_BIN --config <tmp>/gateway.json and waits up to 15 s for its
 * port. Fails the test, quoting its stderr, if it exits first. */
void hx_gw_launch(struct hx_gw *gw);

/* hx_gw_prepare, then hx_gw_launch. */
struct hx_gw *hx_gw_start(const char *policy_json, const char *config_overrides_json);

/*
 * A full disk under the audit log, at a moment the test chooses:
 * hx_gw_launch_capped launches gw with a file size limit (RLIMIT_FSIZE)
 * of limit bytes; hx_audit_fill then sends requests to an unknown route
 * (with headers h, NULL-terminated, or NULL) until gw's audit log is less
 * than room bytes (at most 1,000) from the limit, so the next record that
 * is longer cannot be written. An unknown route's record is about 1 KB,
 * and 2 bytes more for each byte of its path.
 */
void hx_gw_launch_capped(struct hx_gw *gw, long long limit);

/* Milliseconds on the monotonic clock. */
long long hx_now_ms(void);
void hx_audit_fill(const struct hx_gw *gw, const char *const *h, long long limit, long long room);

/* A second gateway beside first: its own config, audit log and logs in
 * <tmp>/<name>/, the same policy (as first's policy.json holds it) and the
 * same stub, with config_overrides_json merged in; started. For replicas
 * sharing a store. */
struct hx_gw *hx_gw_start_peer(const struct hx_gw *first, const char *name,
                               const char *config_overrides_json);

/* Starts a redis-server (Debian's) on a free loopback port, no
 * persistence, and waits until it accepts. */
struct hx_proc *hx_redis_start(int *port);

/* hx_redis_start with more redis-server arguments (a shell word list, e.g.
 * "--requirepass pw"); args starting with "%TLS%" serve TLS only, with the
 * development certificates (hx_certs: server.pem names localhost and
 * 127.0.0.1), the rest of args following. */
struct hx_proc *hx_redis_start_with(int *port, const char *args);

/* gw->url + path. */
const char *hx_gw_url(const struct hx_gw *gw, const char *path);

/* Stops the gateway, then the stub. Returns the gateway's status (-1 if
 * never launched). Fails the test if the stub did not exit 0 (a sanitizer
 * finding, say); a test that kills the stub on purpose stops the gateway
 * with hx_proc_stop(gw->proc) instead. */
int hx_gw_stop(struct hx_gw *gw);

/* The requests' records in the audit log ("type":"request"), as an array
 * ([] if there is no log yet). Fails the test on a line that is not a JSON
 * object. */
json_t *hx_audit_records(const struct hx_gw *gw);

/* Every line of the audit log, chain lines (segment, intent, checkpoint)
 * included. */
json_t *hx_audit_lines(const struct hx_gw *gw);

/* Polls until the audit log holds at least n complete lines and returns
 * them (an unterminated last line is a write in progress, left out). Fails
 * the test after timeout_ms, or on a complete line that is not an object. */
json_t *hx_audit_wait(const struct hx_gw *gw, size_t n, int timeout_ms);

/* ---- TLS ---- */

/*
 * The test's certificates: runs certs/make-dev-certs.sh <tmp>/certs the
 * first time a test calls it and returns that dir (absolute) every time.
 * It holds ca.pem and ca.key (the development CA), server.pem and
 * server.key (for localhost, 127.0.0.1 and ::1, signed by the CA) and
 * client.pem and client.key. No system store trusts the CA. Fails the test
 * if the script cannot run or fails.
 */
const char *hx_certs(void);

/*
 * Issues a server certificate signed by the development CA with openssl:
 * <certs>/<name>.pem and its key <certs>/<name>.key (P-256), whose only
 * names are san, an openssl subjectAltName value such as
 * "DNS:wrong.example" or "DNS:a.test,IP:127.0.0.1". name is a plain file
 * name. Returns the .pem path. Fails the test if openssl fails.
 */
const char *hx_cert_issue(const char *name, const char *san);

/*
 * Issues a client certificate (extendedKeyUsage clientAuth) signed by
 * ca_dir's ca.pem and ca.key (NULL: the development CA of hx_certs), with
 * the subject subj ("/CN=x/O=y") and, unless san is NULL, the
 * subjectAltName san ("DNS:a.test,URI:spiffe://x"). Writes
 * <certs>/<name>.pem and <certs>/<name>.key and returns the .pem path.
 * Fails the test if openssl fails.
 */
const char *hx_client_cert_issue(const char *name, const char *subj, const char *san,
                                 const char *ca_dir);

/* How a TLS stub and the gateway in front of it are set up. Any field may
 * be NULL for its default; a NULL struct pointer means all defaults. */
struct hx_tls {
	const char *cert;          /* PEM chain the stub serves; NULL: <certs>/server.pem */
	const char *key;           /* its private key; NULL: <certs>/server.key */
	const char *ca;            /* CA the control calls trust, and the gateway's
	                              upstream.ca_file; NULL: <certs>/ca.pem */
	const char *name;          /* a name cert covers, used in stub->url for the
	                              control calls (which reach 127.0.0.1 whatever it
	                              is); at most 40 bytes; NULL: "127.0.0.1" */
	const char *upstream_host; /* the host in the gateway's upstream.base_url;
	                              NULL: "localhost" */
};

/*
 * Starts an upstream_stub serving HTTPS with tls->cert and tls->key
 * (--tls-cert/--tls-key) on a kernel-chosen port of 127.0.0.1, waits until
 * it accepts, and makes it the stub the hx_stub_* calls talk to. Those
 * calls verify it against tls->ca under tls->name, so a stub whose
 * certificate does not chain to the CA or cover the name fails them.
 * Fails the test if the stub cannot start (a bad cert or key, say).
 */
struct hx_stub *hx_stub_start_tls_opts(const struct hx_tls *tls);

/* hx_stub_start_tls_opts with cert and key (NULL: the dev server's) and
 * the other defaults. */
struct hx_stub *hx_stub_start_tls(const char *cert, const char *key);

/*
 * hx_gw_prepare, but the stub is a TLS one (hx_stub_start_tls_opts(tls))
 * and gateway.json's upstream is
 *
 *   {"base_url":"https://<tls->upstream_host>:<stub port>/v1",
 *    "ca_file":"<tls->ca, absolute>", "timeout_ms":3000,
 *    "connect_timeout_ms":1000}
 *
 * before config_overrides_json is merged: {"upstream":{"ca_file":null}}
 * leaves the system store in charge, say. By default the gateway therefore
 * verifies the dev server certificate as "localhost" against the dev CA.
 */
struct hx_gw *hx_gw_prepare_tls(const char *policy_json, const char *config_overrides_json,
                                const struct hx_tls *tls);

/* hx_gw_prepare_tls, then hx_gw_launch. */
struct hx_gw *hx_gw_start_tls(const char *policy_json, const char *config_overrides_json,
                              const struct hx_tls *tls);

#endif
