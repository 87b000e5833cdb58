/*
 * harness: see harness.h for the contract. Everything here is per test
 * process; Criterion forks one per test.
 */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/resource.h>
#endif

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <openssl/sha.h>

#define PROCS_MAX     16
#define ARGS_MAX      64
#define FILE_MAX      ((size_t)256 << 20)
#define RESP_MAX      ((size_t)512 << 20)
#define RAW_MAX       ((size_t)64 << 20)
#define HEADERS_MAX   256
#define STOP_WAIT_MS  5000
#define START_WAIT_MS 15000
#define TAIL_BYTES    2000
#define RUN_WAIT_MS   30000
#define CERTS_SCRIPT  "certs/make-dev-certs.sh"

struct cleanup {
	void (*fn)(void *);
	void *p;
};

static struct {
	char tmpdir[HX_PATH_MAX];
	struct hx_proc *procs[PROCS_MAX];
	size_t nprocs;
	struct cleanup *cl;
	size_t ncl, capcl;
	struct hx_stub *stub; /* the one hx_stub_* talk to */
	int nstubs;
	bool curl_ready;
	char certs[HX_PATH_MAX]; /* hx_certs()'s dir, once made */
} H;

/* ---- ownership: everything handed out is freed at teardown ---- */

static void *
keep(void (*fn)(void *), void *p)
{
	if (p == NULL)
		cr_assert_fail("harness: out of memory");
	if (H.ncl == H.capcl) {
		size_t cap = H.capcl ? H.capcl * 2 : 64;
		struct cleanup *grown = realloc(H.cl, cap * sizeof(*grown));

		if (grown == NULL) {
			fn(p);
			cr_assert_fail("harness: out of memory");
		}
		H.cl = grown;
		H.capcl = cap;
	}
	H.cl[H.ncl].fn = fn;
	H.cl[H.ncl].p = p;
	H.ncl++;
	return p;
}

/* Forgets p without freeing it; false if it was not kept. */
static bool
unkeep(const void *p)
{
	for (size_t i = H.ncl; i-- > 0;) {
		if (H.cl[i].p == p) {
			memmove(&H.cl[i], &H.cl[i + 1], (H.ncl - i - 1) * sizeof(*H.cl));
			H.ncl--;
			return true;
		}
	}
	return false;
}

static void
decref(void *p)
{
	json_decref(p);
}

static json_t *
keep_json(json_t *v)
{
	return keep(decref, v);
}

static void *
xcalloc(size_t n)
{
	return keep(free, calloc(1, n));
}

long long
hx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
hx_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *
env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : def;
}

const char *
hx_gw_bin(void)
{
	return env_or("GW_BIN", "build/gateway");
}

const char *
hx_stub_bin(void)
{
	return env_or("GW_STUB", "build/tests/upstream_stub");
}

const char *
hx_data_dir(void)
{
	return env_or("GW_DATA", "tests/data");
}

const char *
hx_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0 && (s = malloc((size_t)n + 1)) != NULL) {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return keep(free, s);
}

/* ---- files ---- */

/* Reads at most FILE_MAX bytes of path into a new NUL-terminated buffer. */
static char *
slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL, *grown;
	size_t n = 0, cap = 0;
	ssize_t r;

	if (fd < 0)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 65536;
			if (cap > FILE_MAX + 1)
				cap = FILE_MAX + 1;
			if (cap - n < 2 || (grown = realloc(buf, cap)) == NULL)
				goto fail;
			buf = grown;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return NULL;
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

const char *
hx_read_file(const char *path, size_t *len)
{
	char *s = slurp(path, len);

	return s != NULL ? keep(free, s) : NULL;
}

void
hx_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	size_t n = strlen(text);

	cr_assert(f != NULL, "harness: cannot create %s: %s", path, strerror(errno));
	if (fwrite(text, 1, n, f) != n) {
		fclose(f);
		cr_assert_fail("harness: cannot write %s", path);
	}
	cr_assert(fclose(f) == 0, "harness: cannot write %s: %s", path, strerror(errno));
}

static const unsigned char *
find_bytes(const unsigned char *hay, size_t hl, const char *needle, size_t nl)
{
	if (nl == 0)
		return hay;
	for (size_t i = 0; nl <= hl && i <= hl - nl; i++)
		if (hay[i] == (unsigned char)needle[0] && memcmp(hay + i, needle, nl) == 0)
			return hay + i;
	return NULL;
}

bool
hx_file_contains(const char *path, const char *needle)
{
	size_t len;
	char *s = slurp(path, &len);
	bool found;

	if (s == NULL)
		return false;
	found = find_bytes((const unsigned char *)s, len, needle, strlen(needle)) != NULL;
	free(s);
	return found;
}

bool
hx_wait_contains(const char *path, const char *needle, int timeout_ms)
{
	struct timespec step = {0, 20 * 1000000L};

	for (int waited = 0; waited < timeout_ms; waited += 20) {
		if (hx_file_contains(path, needle))
			return true;
		while (nanosleep(&step, &step) != 0 && errno == EINTR)
			;
		step.tv_nsec = 20 * 1000000L;
	}
	return hx_file_contains(path, needle);
}

const char *
hx_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const char *
hx_key_digest(const char *key)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	size_t i;

	SHA256((const unsigned char *)key, strlen(key), md);
	for (i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hx_fmt("%s", hex);
}

/* The last TAIL_BYTES of a file, for failure messages. */
static const char *
tail(const char *path)
{
	size_t len;
	const char *s = hx_read_file(path, &len);

	if (s == NULL)
		return "(unreadable)";
	return len > TAIL_BYTES ? s + len - TAIL_BYTES : s;
}

json_t *
hx_json(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	cr_assert(v != NULL, "harness: bad JSON at line %d: %s", e.line, e.text);
	return keep_json(v);
}

/* Removes a tree below dirfd; bounded depth, never follows links. */
static void
rm_tree(int dirfd, const char *name, int depth)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd >= 0 && (d = fdopendir(fd)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (unlinkat(fd, e->d_name, 0) != 0 && errno == EISDIR && depth < 32)
				rm_tree(fd, e->d_name, depth + 1);
		}
		closedir(d);
	} else if (fd >= 0) {
		close(fd);
	}
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

const char *
hx_tmpdir(void)
{
	const struct criterion_test *t = criterion_current_test;
	char tag[48] = "";
	size_t j = 0;
	int n;

	if (H.tmpdir[0] != '\0')
		return H.tmpdir;
	/* Name the dir after the test, so a kept one is easy to find. */
	for (const char *s = t != NULL ? t->name : "test"; *s != '\0' && j + 1 < sizeof(tag); s++)
		tag[j++] = isalnum((unsigned char)*s) || *s == '-' ? *s : '_';
	tag[j] = '\0';
	n = snprintf(H.tmpdir, sizeof(H.tmpdir), "%s/gwit-%s-XXXXXX", env_or("TMPDIR", "/tmp"),
	             tag);
	cr_assert(n > 0 && (size_t)n < sizeof(H.tmpdir), "harness: TMPDIR is too long");
	if (mkdtemp(H.tmpdir) == NULL) {
		int err = errno;

		H.tmpdir[0] = '\0';
		cr_assert_fail("harness: mkdtemp: %s", strerror(err));
	}
	return H.tmpdir;
}

const char *
hx_path(const char *name)
{
	return hx_fmt("%s/%s", hx_tmpdir(), name);
}

/* ---- child processes ---- */

static int
status_of(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return -1;
}

/* Reaps p if it has exited, waiting up to timeout_ms. True once reaped. */
static bool
reap(struct hx_proc *p, int timeout_ms)
{
	long long end = hx_now_ms() + timeout_ms;
	int ws;

	if (p->pid <= 0)
		return true;
	for (;;) {
		pid_t r = waitpid(p->pid, &ws, WNOHANG);

		if (r == p->pid) {
			p->status = status_of(ws);
			p->pid = -1;
			return true;
		}
		if (r < 0 && errno != EINTR) {
			/* Not our child any more; nothing left to wait for. */
			p->pid = -1;
			return true;
		}
		if (hx_now_ms() >= end)
			return false;
		hx_sleep_ms(5);
	}
}

struct hx_proc *
hx_proc_start(const char *name, const char *const argv[])
{
	struct hx_proc *p;
	char *args[ARGS_MAX + 1], exe[PATH_MAX];
	const char *dir = hx_tmpdir();
	int out = -1, err = -1, nul = -1;
	size_t n;
	pid_t parent = getpid(), pid;

	cr_assert(H.nprocs < PROCS_MAX, "harness: more than %d processes in one test", PROCS_MAX);
	cr_assert(argv != NULL && argv[0] != NULL, "harness: empty argv");
	p = xcalloc(sizeof(*p));
	p->pid = -1;
	p->status = -1;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->out_path, sizeof(p->out_path), "%s/%s.stdout", dir, name);
	snprintf(p->err_path, sizeof(p->err_path), "%s/%s.stderr", dir, name);
	/* The child runs in the temp dir, so a relative program path must be resolved here. */
	if (strchr(argv[0], '/') != NULL) {
		cr_assert(realpath(argv[0], exe) != NULL, "harness: cannot find %s: %s", argv[0],
		          strerror(errno));
	} else {
		snprintf(exe, sizeof(exe), "%s", argv[0]);
	}
	/* Everything the child needs is made before fork: it may only exec. */
	for (n = 0; argv[n] != NULL; n++) {
		cr_assert(n < ARGS_MAX, "harness: more than %d arguments", ARGS_MAX);
		args[n] = keep(free, strdup(n == 0 ? exe : argv[n]));
	}
	args[n] = NULL;
	out = open(p->out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	err = open(p->err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (out < 0 || err < 0 || nul < 0) {
		int e = errno;

		close(out);
		close(err);
		close(nul);
		cr_assert_fail("harness: cannot open output files in %s: %s", dir, strerror(e));
	}
	pid = fork();
	if (pid == 0) {
		struct sigaction sa;
		sigset_t none;
		static const char msg[] = "harness: exec failed\n";

		setpgid(0, 0);
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
		if (getppid() != parent)
			_exit(127);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGPIPE, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGCHLD, &sa, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || chdir(dir) != 0)
			_exit(127);
		execvp(args[0], args);
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	close(out);
	close(err);
	close(nul);
	cr_assert(pid > 0, "harness: fork: %s", strerror(errno));
	setpgid(pid, pid); /* also here, so kill(-pid) works before the child gets to it */
	p->pid = pid;
	H.procs[H.nprocs++] = p;
	return p;
}

int
hx_proc_stop(struct hx_proc *p)
{
	if (p == NULL || p->pid <= 0)
		return p != NULL ? p->status : -1;
	kill(p->pid, SIGTERM);
	if (!reap(p, STOP_WAIT_MS)) {
		/* Info, not a warning: Criterion exits 1 on any warning. */
		cr_log_info("harness: %s ignored SIGTERM for %d ms; killing it", p->name,
		            STOP_WAIT_MS);
		/* Still unreaped, so the group id cannot have been reused. */
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		reap(p, STOP_WAIT_MS);
	}
	return p->status;
}

int
hx_proc_wait(struct hx_proc *p, int timeout_ms)
{
	return reap(p, timeout_ms) ? p->status : -1;
}

long
hx_proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	size_t n = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "harness: cannot read %s", path);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			kb = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return kb;
}

bool
hx_proc_alive(struct hx_proc *p)
{
	return !reap(p, 0);
}

/* ---- ports ---- */

static void
loopback(struct sockaddr_in *sa, int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int
hx_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	cr_assert(fd >= 0, "harness: socket: %s", strerror(errno));
	loopback(&sa, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	cr_assert(port > 0, "harness: no free port: %s", strerror(errno));
	return port;
}

/* A connected socket to 127.0.0.1:port, or -1. */
static int
dial(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	loopback(&sa, port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
hx_wait_port(int port, int timeout_ms)
{
	long long end = hx_now_ms() + timeout_ms;

	for (;;) {
		int fd = dial(port);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (hx_now_ms() >= end)
			return -1;
		hx_sleep_ms(10);
	}
}

int
hx_wait_file(const char *path, int timeout_ms)
{
	long long end = hx_now_ms() + timeout_ms;
	struct stat st;

	for (;;) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return 0;
		if (hx_now_ms() >= end)
			return -1;
		hx_sleep_ms(10);
	}
}

/* ---- HTTP ---- */

static void
resp_headers_clear(struct hx_resp *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
}

static void
resp_free(void *arg)
{
	struct hx_resp *r = arg;

	resp_headers_clear(r);
	free(r->body);
	json_decref(r->json_);
	free(r);
}

void
hx_resp_free(struct hx_resp *r)
{
	if (r != NULL && unkeep(r))
		resp_free(r);
}

struct sink {
	struct hx_resp *r;
	size_t cap;
};

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	struct hx_resp *r = s->r;
	size_t len = size * n;

	if (len > RESP_MAX - r->len)
		return 0; /* aborts the transfer */
	if (r->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *grown;

		while (cap < r->len + len + 1)
			cap *= 2;
		if ((grown = realloc(r->body, cap)) == NULL)
			return 0;
		r->body = grown;
		s->cap = cap;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

static size_t
on_header(char *line, size_t size, size_t n, void *arg)
{
	struct hx_resp *r = arg;
	size_t total = size * n, len = total, nl;
	const char *colon;
	struct hx_header *grown;
	char *name, *value;

	/* A status line starts a new response (after 100 Continue, say). */
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		resp_headers_clear(r);
		return total;
	}
	colon = memchr(line, ':', len);
	if (colon == NULL || r->nheaders >= HEADERS_MAX)
		return total;
	nl = (size_t)(colon - line);
	colon++;
	while ((size_t)(colon - line) < len && (*colon == ' ' || *colon == '\t'))
		colon++;
	while (len > (size_t)(colon - line) && isspace((unsigned char)line[len - 1]))
		len--;
	grown = realloc(r->headers, (r->nheaders + 1) * sizeof(*grown));
	if (grown == NULL)
		return 0;
	r->headers = grown;
	name = strndup(line, nl);
	value = strndup(colon, len - (size_t)(colon - line));
	if (name == NULL || value == NULL) {
		free(name);
		free(value);
		return 0;
	}
	r->headers[r->nheaders].name = name;
	r->headers[r->nheaders].value = value;
	r->nheaders++;
	return total;
}

static bool
has_header(const char *const *headers, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
			return true;
	return false;
}

/* Appends to *l, keeping the list intact if that fails. */
static bool
slist_add(struct curl_slist **l, const char *s)
{
	struct curl_slist *n = curl_slist_append(*l, s);

	if (n == NULL)
		return false;
	*l = n;
	return true;
}

struct hx_resp *
hx_request(const struct hx_req *rq)
{
	struct hx_resp *r = keep(resp_free, calloc(1, sizeof(struct hx_resp)));
	const char *method = rq->method != NULL ? rq->method : "GET";
	struct sink sink = {r, 0};
	struct curl_slist *hl = NULL, *connect_to = NULL;
	curl_mime *mime = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode rc = CURLE_FAILED_INIT;
	bool ok = true;

	if (!H.curl_ready) {
		cr_assert(curl_global_init(CURL_GLOBAL_DEFAULT) == 0, "harness: curl_global_init");
		H.curl_ready = true;
	}
	c = curl_easy_init();
	cr_assert(c != NULL, "harness: curl_easy_init");
	for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL && ok; i++)
		ok = slist_add(&hl, rq->headers[i]);
	if (ok && rq->body != NULL && rq->parts == NULL && !has_header(rq->headers, "content-type"))
		ok = slist_add(&hl, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rq->timeout_ms > 0 ? rq->timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (rq->cainfo != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, rq->cainfo);
	if (rq->client_cert != NULL)
		curl_easy_setopt(c, CURLOPT_SSLCERT, rq->client_cert);
	if (rq->client_key != NULL)
		curl_easy_setopt(c, CURLOPT_SSLKEY, rq->client_key);
	if (rq->ssl_version != 0)
		curl_easy_setopt(c, CURLOPT_SSLVERSION, rq->ssl_version);
	if (ok && rq->connect_to != NULL) {
		ok = slist_add(&connect_to, rq->connect_to);
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
	}
	if (rq->parts != NULL) {
		mime = curl_mime_init(c);
		ok = ok && mime != NULL;
		for (size_t i = 0; ok && i < rq->nparts; i++) {
			const struct hx_part *pt = &rq->parts[i];
			curl_mimepart *part = curl_mime_addpart(mime);

			ok = part != NULL && curl_mime_name(part, pt->name) == CURLE_OK &&
			     curl_mime_data(part, pt->data, pt->len) == CURLE_OK &&
			     (pt->filename == NULL ||
			      curl_mime_filename(part, pt->filename) == CURLE_OK) &&
			     (pt->type == NULL || curl_mime_type(part, pt->type) == CURLE_OK);
		}
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	} else if (rq->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	           strcmp(method, "PATCH") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "");
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (ok) {
		rc = curl_easy_perform(c);
		if (rc != CURLE_OK)
			snprintf(r->error, sizeof(r->error), "%s",
			         errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		else
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	} else {
		snprintf(r->error, sizeof(r->error), "harness: out of memory building the request");
	}
	if (rc != CURLE_OK)
		r->status = 0;
	if (r->body == NULL)
		r->body = calloc(1, 1);
	curl_easy_cleanup(c);
	curl_mime_free(mime);
	curl_slist_free_all(hl);
	curl_slist_free_all(connect_to);
	cr_assert(r->body != NULL, "harness: out of memory");
	return r;
}

struct hx_resp *
hx_http(const char *method, const char *url, const char *const *headers, const void *body,
        size_t len)
{
	struct hx_req rq = {
	        .method = method, .url = url, .headers = headers, .body = body, .len = len};

	return hx_request(&rq);
}

const char *
hx_resp_header(const struct hx_resp *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

json_t *
hx_resp_json(struct hx_resp *r)
{
	if (r->json_ == NULL)
		r->json_ = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
	return r->json_;
}

/* An open raw socket, closed at teardown unless hx_raw_close came first. */
static void
raw_close(void *p)
{
	close(*(int *)p);
	free(p);
}

int
hx_raw_open(int port, const void *data, size_t len)
{
	int fd = dial(port), *box;

	if (fd < 0)
		return -1;
	box = malloc(sizeof(*box));
	if (box == NULL) {
		close(fd);
		cr_assert_fail("harness: out of memory");
	}
	*box = fd;
	keep(raw_close, box);
	/* A failed send is no failure here: the peer may have answered and
	 * closed already, and hx_raw_read returns that. */
	if (len > 0)
		(void)hx_raw_send(fd, data, len);
	return fd;
}

int
hx_raw_send(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

const char *
hx_raw_read(int fd, int timeout_ms, size_t *out_len)
{
	long long end = hx_now_ms() + timeout_ms;
	size_t n = 0, cap = 65536;
	char *buf = keep(free, malloc(cap));

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		long long left = end - hx_now_ms();
		ssize_t r;
		int pr;

		if (left <= 0)
			break;
		pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		if (cap - n < 4096) {
			char *grown;

			if (cap >= RAW_MAX)
				break;
			unkeep(buf);
			grown = realloc(buf, cap * 2);
			if (grown == NULL) {
				keep(free, buf);
				break;
			}
			buf = keep(free, grown);
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	if (out_len != NULL)
		*out_len = n;
	return buf;
}

void
hx_raw_close(int fd)
{
	for (size_t i = H.ncl; i-- > 0;) {
		if (H.cl[i].fn == raw_close && *(int *)H.cl[i].p == fd) {
			void *p = H.cl[i].p;

			unkeep(p);
			raw_close(p);
			return;
		}
	}
}

const char *
hx_raw(int port, const void *data, size_t len, int timeout_ms, int flags, size_t *out_len)
{
	long long end = hx_now_ms() + timeout_ms;
	const char *src = data;
	size_t sent = 0, n = 0, cap = 65536;
	char *buf;
	int fd = dial(port);

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return NULL;
	}
	if (len == 0 && (flags & HX_RAW_SHUT_WR))
		shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd pfd = {fd, POLLIN | (sent < len ? POLLOUT : 0), 0};
		long long left = end - hx_now_ms();
		ssize_t r;
		int pr;

		if (left <= 0)
			break; /* timed out: return what came */
		pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		if ((pfd.revents & POLLOUT) && sent < len) {
			r = send(fd, src + sent, len - sent, MSG_NOSIGNAL);
			if (r > 0)
				sent += (size_t)r;
			else if (r < 0 && errno != EINTR && errno != EAGAIN)
				sent = len; /* the peer stopped listening; keep reading */
			if (sent == len && (flags & HX_RAW_SHUT_WR))
				shutdown(fd, SHUT_WR);
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			if (n + 1 >= RAW_MAX)
				break;
			if (cap - n < 4096) {
				char *grown = realloc(buf, cap * 2);

				if (grown == NULL)
					break;
				buf = grown;
				cap *= 2;
			}
			r = recv(fd, buf + n, cap - n - 1, 0);
			if (r > 0)
				n += (size_t)r;
			else if (r == 0 || (errno != EINTR && errno != EAGAIN))
				break; /* closed or reset */
		}
	}
	close(fd);
	buf[n] = '\0';
	if (out_len != NULL)
		*out_len = n;
	return keep(free, buf);
}

/* ---- the stub ---- */

/*
 * Starts an upstream_stub on 127.0.0.1 with extra (NULL-terminated, NULL
 * for none) after the usual arguments, reads its port and waits until it
 * accepts. Leaves url, the TLS fields and H.stub to the caller.
 */
static struct hx_stub *
stub_launch(const char *const extra[])
{
	struct hx_stub *s = xcalloc(sizeof(*s));
	const char *name = H.nstubs == 0 ? "stub" : hx_fmt("stub-%d", H.nstubs + 1);
	const char *port_file = hx_path(hx_fmt("%s.port", name));
	const char *argv[12] = {hx_stub_bin(), "--port-file", port_file, "--listen", "127.0.0.1:0"};
	long long end = hx_now_ms() + START_WAIT_MS;
	const char *text;
	char *tail_end;
	long port;
	size_t n = 5;

	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		cr_assert(n + 1 < sizeof(argv) / sizeof(argv[0]),
		          "harness: too many stub arguments");
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	H.nstubs++;
	s->proc = hx_proc_start(name, argv);
	while (hx_wait_file(port_file, 10) != 0) {
		if (!hx_proc_alive(s->proc))
			cr_assert_fail("harness: the stub exited (status %d) before listening:\n%s",
			               s->proc->status, tail(s->proc->err_path));
		if (hx_now_ms() >= end)
			cr_assert_fail("harness: the stub wrote no port file in %d ms:\n%s",
			               START_WAIT_MS, tail(s->proc->err_path));
	}
	text = hx_read_file(port_file, NULL);
	cr_assert(text != NULL, "harness: cannot read %s", port_file);
	errno = 0;
	port = strtol(text, &tail_end, 10);
	cr_assert(errno == 0 && port > 0 && port < 65536 && *tail_end == '\n',
	          "harness: bad port file %s: '%s'", port_file, text);
	s->port = (int)port;
	cr_assert(hx_wait_port(s->port, START_WAIT_MS) == 0, "harness: stub port %d never opened",
	          s->port);
	return s;
}

struct hx_stub *
hx_stub_start(void)
{
	struct hx_stub *s = stub_launch(NULL);

	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	H.stub = s;
	return s;
}

/* A control call to the current stub that must answer 200; over HTTPS,
 * verified, when it is a TLS stub. */
static struct hx_resp *
stub_call(const char *method, const char *path, const char *body)
{
	struct hx_req rq = {.method = method, .body = body, .len = body != NULL ? strlen(body) : 0};
	struct hx_resp *r;

	cr_assert(H.stub != NULL, "harness: no stub started");
	rq.url = hx_fmt("%s%s", H.stub->url, path);
	if (H.stub->ca_file[0] != '\0')
		rq.cainfo = H.stub->ca_file;
	if (H.stub->connect_to[0] != '\0')
		rq.connect_to = H.stub->connect_to;
	r = hx_request(&rq);
	cr_assert(r->status == 200, "harness: %s %s -> %ld %s%s", method, path, r->status, r->error,
	          r->body);
	return r;
}

json_t *
hx_stub_requests(void)
{
	struct hx_resp *r = stub_call("GET", "/__stub/requests", NULL);
	json_t *v = json_loadb(r->body, r->len, 0, NULL);

	hx_resp_free(r);
	cr_assert(json_is_array(v), "harness: the stub's record is not a JSON array");
	return keep_json(v);
}

void
hx_stub_clear(void)
{
	hx_resp_free(stub_call("DELETE", "/__stub/requests", NULL));
}

void
hx_stub_next(const char *json)
{
	hx_resp_free(stub_call("POST", "/__stub/next", json));
}

void
hx_stub_next_clear(void)
{
	hx_resp_free(stub_call("DELETE", "/__stub/next", NULL));
}

static int
b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

const char *
hx_record_body(json_t *record, size_t *len)
{
	json_t *b = json_object_get(record, "body");
	const char *s;
	char *out;
	size_t n, j = 0;
	unsigned acc = 0;
	int bits = 0;

	if (json_is_string(b)) {
		*len = json_string_length(b);
		return json_string_value(b);
	}
	b = json_object_get(record, "body_b64");
	if (!json_is_string(b))
		return NULL;
	s = json_string_value(b);
	n = json_string_length(b);
	out = keep(free, malloc(n / 4 * 3 + 3));
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = b64_value((unsigned char)s[i]);

		cr_assert(v >= 0, "harness: body_b64 is not base64");
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[j++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[j] = '\0';
	*len = j;
	return out;
}

/* ---- the gateway ---- */

/* Merges src into dst: objects key by key, null deletes, others replace. */
static void
merge(json_t *dst, json_t *src)
{
	const char *key;
	json_t *v;

	json_object_foreach(src, key, v)
	{
		json_t *d = json_object_get(dst, key);

		if (json_is_null(v))
			json_object_del(dst, key);
		else if (json_is_object(v) && json_is_object(d))
			merge(d, v);
		else
			json_object_set(dst, key, v);
	}
}

/* Literal text, or "@name" for the file tests/data/name. */
static const char *
text_arg(const char *arg)
{
	const char *path, *s;

	if (arg == NULL || arg[0] != '@')
		return arg;
	path = hx_fmt("%s/%s", hx_data_dir(), arg + 1);
	s = hx_read_file(path, NULL);
	cr_assert(s != NULL, "harness: cannot read %s", path);
	return s;
}

static void
set_path(char *dst, const char *dir, const char *p)
{
	if (p[0] == '/')
		snprintf(dst, HX_PATH_MAX, "%s", p);
	else
		snprintf(dst, HX_PATH_MAX, "%s/%s", dir, p);
}

/*
 * The body of hx_gw_prepare and hx_gw_prepare_tls: policy and overrides are
 * the texts (NULL: {} and none), stub is running, base_url points at it and
 * ca_file (NULL: none) is upstream.ca_file before the overrides.
 */
static struct hx_gw *
gw_prepare_in(struct hx_gw *gw, const char *policy, const char *overrides, struct hx_stub *stub,
              const char *base_url, const char *ca_file)
{
	const char *listen, *colon, *audit;
	char *dump;
	long port;

	if (gw->dir == NULL)
		gw->dir = hx_tmpdir();
	if (gw->proc_name[0] == '\0')
		snprintf(gw->proc_name, sizeof(gw->proc_name), "gateway");
	gw->stub = stub;
	gw->stub_port = gw->stub->port;
	gw->port = hx_free_port();
	snprintf(gw->policy_path, sizeof(gw->policy_path), "%s/policy.json", gw->dir);
	snprintf(gw->config_path, sizeof(gw->config_path), "%s/gateway.json", gw->dir);
	snprintf(gw->out_path, sizeof(gw->out_path), "%s/%s.stdout", hx_tmpdir(), gw->proc_name);
	snprintf(gw->err_path, sizeof(gw->err_path), "%s/%s.stderr", hx_tmpdir(), gw->proc_name);
	hx_write_file(gw->policy_path, policy != NULL ? policy : "{}");
	gw->config = keep_json(json_pack(
	        "{s:s,s:{s:s,s:i,s:i},s:{s:s},s:s}", "listen", hx_fmt("127.0.0.1:%d", gw->port),
	        "upstream", "base_url", base_url, "timeout_ms", 3000, "connect_timeout_ms", 1000,
	        "audit", "path", "audit.log", "policy_file", "policy.json"));
	if (ca_file != NULL)
		cr_assert(json_object_set_new(json_object_get(gw->config, "upstream"), "ca_file",
		                              json_string(ca_file)) == 0,
		          "harness: out of memory");
	if (overrides != NULL) {
		json_error_t e;
		json_t *o = keep_json(json_loads(overrides, 0, &e));

		cr_assert(json_is_object(o), "harness: config overrides are not a JSON object");
		merge(gw->config, o);
	}
	/* An override may move the listener; follow it when it is host:port. */
	listen = json_string_value(json_object_get(gw->config, "listen"));
	colon = listen != NULL ? strrchr(listen, ':') : NULL;
	if (colon != NULL && (port = strtol(colon + 1, NULL, 10)) > 0 && port < 65536)
		gw->port = (int)port;
	snprintf(gw->url, sizeof(gw->url), "http://127.0.0.1:%d", gw->port);
	audit = json_string_value(json_object_get(json_object_get(gw->config, "audit"), "path"));
	set_path(gw->audit_path, gw->dir, audit != NULL ? audit : "audit.log");
	dump = json_dumps(gw->config, JSON_INDENT(2));
	cr_assert(dump != NULL, "harness: out of memory");
	hx_write_file(gw->config_path, keep(free, dump));
	return gw;
}

static struct hx_gw *
gw_prepare(const char *policy, const char *overrides, struct hx_stub *stub, const char *base_url,
           const char *ca_file)
{
	return gw_prepare_in(xcalloc(sizeof(struct hx_gw)), policy, overrides, stub, base_url,
	                     ca_file);
}

struct hx_gw *
hx_gw_start_peer(const struct hx_gw *first, const char *name, const char *config_overrides_json)
{
	struct hx_gw *gw = xcalloc(sizeof(*gw));
	const char *dir = hx_path(name);

	cr_assert(mkdir(dir, 0700) == 0 || errno == EEXIST, "harness: cannot make %s", dir);
	gw->dir = keep(free, strdup(dir));
	snprintf(gw->proc_name, sizeof(gw->proc_name), "%s", name);
	gw_prepare_in(gw, hx_read_file(first->policy_path, NULL), text_arg(config_overrides_json),
	              first->stub,
	              json_string_value(json_object_get(json_object_get(first->config, "upstream"),
	                                                "base_url")),
	              json_string_value(json_object_get(json_object_get(first->config, "upstream"),
	                                                "ca_file")));
	hx_gw_launch(gw);
	return gw;
}

struct hx_proc *
hx_redis_start(int *port)
{
	return hx_redis_start_with(port, NULL);
}

struct hx_proc *
hx_redis_start_with(int *port, const char *args)
{
	/* Through the shell: redis-server is a link it reads its own name from,
	 * which resolving argv[0] would lose. */
	const char *argv[] = {"/bin/sh", "-c", NULL, NULL};
	struct hx_proc *p;

	*port = hx_free_port();
	if (args && strstr(args, "%TLS%"))
		argv[2] = hx_fmt(
		        "exec redis-server --port 0 --tls-port %d --bind 127.0.0.1 --save '' "
		        "--appendonly no --tls-cert-file %s/server.pem --tls-key-file "
		        "%s/server.key --tls-ca-cert-file %s/ca.pem --tls-auth-clients no %s",
		        *port, hx_certs(), hx_certs(), hx_certs(), args + 5);
	else
		argv[2] = hx_fmt("exec redis-server --port %d --bind 127.0.0.1 --save '' "
		                 "--appendonly no %s",
		                 *port, args ? args : "");
	p = hx_proc_start("redis", argv);
	cr_assert(hx_wait_port(*port, 10000) == 0, "harness: redis-server did not listen:\n%s",
	          tail(p->err_path));
	return p;
}

struct hx_gw *
hx_gw_prepare(const char *policy_json, const char *config_overrides_json)
{
	const char *policy = text_arg(policy_json), *overrides = text_arg(config_overrides_json);
	struct hx_stub *stub = hx_stub_start();

	return gw_prepare(policy, overrides, stub, hx_fmt("http://127.0.0.1:%d/v1", stub->port),
	                  NULL);
}

/* The inode of the socket listening on 127.0.0.1:port (or any address),
 * from /proc/net/tcp; 0 when none listens. */
static unsigned long
listener_inode(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	unsigned long inode = 0, ino;
	unsigned addr, p, st;

	if (f == NULL)
		return 0;
	while (inode == 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, " %*d: %8X:%4X %*8X:%*4X %2X %*8X:%*8X %*2X:%*8X %*8X %*u %*d %lu",
		           &addr, &p, &st, &ino) == 4 &&
		    (int)p == port && st == 0x0A)
			inode = ino;
	fclose(f);
	return inode;
}

/* Whether process pid holds the socket listening on port: a port taken by
 * another test's gateway must not pass for ours. */
static bool
listens_here(pid_t pid, int port)
{
	unsigned long inode = listener_inode(port);
	char dir[64], path[320], link[64], want[64];
	struct dirent *d;
	bool found = false;
	ssize_t n;
	DIR *fds;

	if (inode == 0)
		return false;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if ((fds = opendir(dir)) == NULL)
		return false;
	while (!found && (d = readdir(fds)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(fds);
	return found;
}

/* Moves the gateway to a new free port (its config rewritten). */
static void
move_port(struct hx_gw *gw)
{
	char *dump;

	gw->port = hx_free_port();
	snprintf(gw->url, sizeof(gw->url), "http://127.0.0.1:%d", gw->port);
	json_object_set_new(gw->config, "listen", json_string(hx_fmt("127.0.0.1:%d", gw->port)));
	dump = json_dumps(gw->config, JSON_INDENT(2));
	cr_assert(dump != NULL, "harness: out of memory");
	hx_write_file(gw->config_path, keep(free, dump));
}

void
hx_gw_launch(struct hx_gw *gw)
{
	const char *argv[] = {hx_gw_bin(), "--config", gw->config_path, NULL};
	long long end = hx_now_ms() + START_WAIT_MS;
	int attempt;

	/* A free port may be taken by another test between the moment it was
	 * found and the gateway's bind: then it moves to another, and the port
	 * counts as listening only when this gateway holds it. */
	for (attempt = 0;; attempt++) {
		gw->proc = hx_proc_start(gw->proc_name, argv);
		gw->proc->must_exit_clean = true;
		while (hx_wait_port(gw->port, 20) != 0 || !listens_here(gw->proc->pid, gw->port)) {
			if (!hx_proc_alive(gw->proc))
				break;
			if (hx_now_ms() >= end)
				cr_assert_fail(
				        "harness: the gateway did not listen on %d in %d ms:\n%s",
				        gw->port, START_WAIT_MS, tail(gw->err_path));
		}
		if (gw->proc->pid > 0 && hx_proc_alive(gw->proc))
			return;
		if (attempt < 5 && strstr(tail(gw->err_path), "Address already in use") &&
		    strcmp(json_string_value(json_object_get(gw->config, "listen")),
		           hx_fmt("127.0.0.1:%d", gw->port)) == 0) {
			gw->proc->must_exit_clean = false;
			move_port(gw);
			continue;
		}
		cr_assert_fail(
		        "harness: the gateway exited (status %d) before listening on %d:\n%s",
		        gw->proc->status, gw->port, tail(gw->err_path));
	}
}

void
hx_gw_launch_capped(struct hx_gw *gw, long long limit)
{
	struct rlimit keep, low;

	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &keep), 0);
	low = keep;
	low.rlim_cur = (rlim_t)limit;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &low), 0);
	hx_gw_launch(gw);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &keep), 0);
}

void
hx_audit_fill(const struct hx_gw *gw, const char *const *h, long long limit, long long room)
{
	static char pad[600];
	long long step = 0, before, left;
	struct hx_resp *r;
	struct stat st;
	size_t extra;
	int i;

	memset(pad, 'x', sizeof(pad));
	cr_assert_eq(stat(gw->audit_path, &st), 0);
	for (i = 0; i < 2000; i++) {
		before = (long long)st.st_size;
		left = limit - before;
		if (left < room)
			break;
		/* Near the end, one record padded to leave about room / 2. */
		extra = 0;
		if (step > 0 && left < step + room && left - room / 2 >= step)
			extra = (size_t)(left - room / 2 - step) / 2;
		if (extra > sizeof(pad))
			extra = sizeof(pad);
		r = hx_http("GET",
		            hx_gw_url(gw, hx_fmt("/v1/nothing%s%.*s", extra ? "/" : "", (int)extra,
		                                 pad)),
		            h, NULL, 0);
		cr_assert_eq(r->status, 404, "harness: filling the audit log: %ld %s", r->status,
		             r->body);
		cr_assert_eq(stat(gw->audit_path, &st), 0);
		if (extra == 0)
			step = (long long)st.st_size - before;
	}
	cr_assert_geq(limit - (long long)st.st_size, 0, "harness: the audit log overflowed");
	cr_assert_lt(limit - (long long)st.st_size, room, "harness: the audit log is not full");
}

struct hx_gw *
hx_gw_start(const char *policy_json, const char *config_overrides_json)
{
	struct hx_gw *gw = hx_gw_prepare(policy_json, config_overrides_json);

	hx_gw_launch(gw);
	return gw;
}

const char *
hx_gw_url(const struct hx_gw *gw, const char *path)
{
	return hx_fmt("%s%s", gw->url, path);
}

int
hx_gw_stop(struct hx_gw *gw)
{
	int status = gw->proc != NULL ? hx_proc_stop(gw->proc) : -1;
	int st = hx_proc_stop(gw->stub->proc);

	cr_assert(st == 0, "harness: the stub exited with status %d:\n%s", st,
	          tail(gw->stub->proc->err_path));
	return status;
}

/*
 * Parses the audit log into an array; every complete line must be a JSON
 * object, else the test fails. An unterminated last line is held to that
 * too, unless partial_ok: then it is a write in progress and left out.
 */
/* Whether the line at p (up to end) is the gateway's "torn" segment. */
static bool
next_line_is_torn_segment(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
	char *line = strndup(p, n);
	bool torn =
	        line && strstr(line, "\"type\":\"segment\"") && strstr(line, "\"reason\":\"torn\"");

	free(line);
	return torn;
}

static json_t *
audit_parse(const struct hx_gw *gw, bool partial_ok, bool requests_only)
{
	size_t len, lineno = 0;
	char *text = slurp(gw->audit_path, &len), *line, *nl;
	json_t *all = keep_json(json_array());

	if (text == NULL)
		return all;
	for (line = text; (size_t)(line - text) < len; line = nl + 1) {
		json_t *v;

		lineno++;
		nl = memchr(line, '\n', len - (size_t)(line - text));
		if (nl == NULL && partial_ok)
			break;
		if (nl == NULL)
			nl = text + len;
		*nl = '\0';
		if (line[0] == '\0')
			continue;
		v = json_loads(line, 0, NULL);
		/* A line torn by a crash, which the gateway declares with the
		 * "torn" segment that follows it, is not a record. */
		if (!json_is_object(v) && nl + 1 < text + len &&
		    next_line_is_torn_segment(nl + 1, text + len)) {
			json_decref(v);
			continue;
		}
		if (!json_is_object(v)) {
			json_decref(v);
			free(text);
			cr_assert_fail("harness: %s line %zu is not a JSON object", gw->audit_path,
			               lineno);
		}
		/* The chain's own lines (segments, intents, checkpoints) are not
		 * requests' records. */
		const char *type = json_string_value(json_object_get(v, "type"));

		if (requests_only && (type == NULL || strcmp(type, "request") != 0))
			json_decref(v);
		else
			json_array_append_new(all, v);
	}
	free(text);
	return all;
}

json_t *
hx_audit_records(const struct hx_gw *gw)
{
	return audit_parse(gw, false, true);
}

json_t *
hx_audit_lines(const struct hx_gw *gw)
{
	return audit_parse(gw, false, false);
}

json_t *
hx_audit_wait(const struct hx_gw *gw, size_t n, int timeout_ms)
{
	long long end = hx_now_ms() + timeout_ms;

	for (;;) {
		json_t *v = audit_parse(gw, true, true);

		if (json_array_size(v) >= n)
			return v;
		if (hx_now_ms() >= end)
			cr_assert_fail("harness: %zu audit records after %d ms, wanted %zu",
			               json_array_size(v), timeout_ms, n);
		hx_sleep_ms(20);
	}
}

/* ---- TLS ---- */

/* Runs argv to its end; fails the test, quoting its stderr, unless it exits
 * 0 within RUN_WAIT_MS. */
static void
run(const char *name, const char *const argv[])
{
	struct hx_proc *p = hx_proc_start(name, argv);
	int st = hx_proc_wait(p, RUN_WAIT_MS);

	if (st == -1 && hx_proc_alive(p)) {
		hx_proc_stop(p);
		cr_assert_fail("harness: %s did not finish in %d ms:\n%s", argv[0], RUN_WAIT_MS,
		               tail(p->err_path));
	}
	cr_assert(st == 0, "harness: %s exited with status %d:\n%s", argv[0], st,
	          tail(p->err_path));
}

/* p as an absolute path (children run in the temp dir); p must exist. */
static const char *
absolute(const char *p)
{
	char buf[PATH_MAX];

	cr_assert(realpath(p, buf) != NULL, "harness: cannot find %s: %s", p, strerror(errno));
	return hx_fmt("%s", buf);
}

const char *
hx_certs(void)
{
	const char *dir;

	if (H.certs[0] != '\0')
		return H.certs;
	dir = hx_path("certs");
	run("certs", (const char *const[]){CERTS_SCRIPT, dir, NULL});
	dir = absolute(dir);
	cr_assert(strlen(dir) < sizeof(H.certs), "harness: %s is too long", dir);
	snprintf(H.certs, sizeof(H.certs), "%s", dir);
	return H.certs;
}

const char *
hx_cert_issue(const char *name, const char *san)
{
	const char *dir = hx_certs();
	const char *key, *csr, *ext, *pem, *serial;

	cr_assert(name != NULL && name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
	                  strlen(name) <= 24,
	          "harness: '%s' is not a short plain file name", name != NULL ? name : "(null)");
	cr_assert(san != NULL && strpbrk(san, "\r\n") == NULL, "harness: bad subjectAltName");
	key = hx_fmt("%s/%s.key", dir, name);
	csr = hx_fmt("%s/%s.csr", dir, name);
	ext = hx_fmt("%s/%s.ext", dir, name);
	pem = hx_fmt("%s/%s.pem", dir, name);
	/* Unique enough for certificates that live for one test. */
	serial = hx_fmt("0x%llx%04x", (unsigned long long)time(NULL), (unsigned)getpid() & 0xffffu);
	hx_write_file(ext, hx_fmt("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
	                          "basicConstraints=CA:FALSE\n",
	                          san));
	run(hx_fmt("cert-%s-req", name),
	    (const char *const[]){"openssl", "req", "-newkey", "ec", "-pkeyopt",
	                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
	                          "-subj", hx_fmt("/CN=%s", name), NULL});
	run(hx_fmt("cert-%s-sign", name),
	    (const char *const[]){"openssl", "x509", "-req", "-in", csr, "-CA",
	                          hx_fmt("%s/ca.pem", dir), "-CAkey", hx_fmt("%s/ca.key", dir),
	                          "-set_serial", serial, "-days", "2", "-extfile", ext, "-out", pem,
	                          NULL});
	return pem;
}

const char *
hx_client_cert_issue(const char *name, const char *subj, const char *san, const char *ca_dir)
{
	const char *dir = hx_certs();
	const char *ca = ca_dir != NULL ? ca_dir : dir;
	const char *key, *csr, *ext, *pem, *serial;

	cr_assert(name != NULL && name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
	                  strlen(name) <= 24,
	          "harness: '%s' is not a short plain file name", name != NULL ? name : "(null)");
	cr_assert(subj != NULL && subj[0] == '/' && strpbrk(subj, "\r\n") == NULL,
	          "harness: bad subject");
	cr_assert(san == NULL || strpbrk(san, "\r\n") == NULL, "harness: bad subjectAltName");
	key = hx_fmt("%s/%s.key", dir, name);
	csr = hx_fmt("%s/%s.csr", dir, name);
	ext = hx_fmt("%s/%s.ext", dir, name);
	pem = hx_fmt("%s/%s.pem", dir, name);
	serial = hx_fmt("0x%llx%04x", (unsigned long long)time(NULL) + (unsigned long long)H.ncl,
	                (unsigned)getpid() & 0xffffu);
	hx_write_file(ext, hx_fmt("%s%s%sextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
	                          san != NULL ? "subjectAltName=" : "", san != NULL ? san : "",
	                          san != NULL ? "\n" : ""));
	run(hx_fmt("cert-%s-req", name),
	    (const char *const[]){"openssl", "req", "-newkey", "ec", "-pkeyopt",
	                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
	                          "-subj", subj, NULL});
	run(hx_fmt("cert-%s-sign", name),
	    (const char *const[]){"openssl", "x509", "-req", "-in", csr, "-CA",
	                          hx_fmt("%s/ca.pem", ca), "-CAkey", hx_fmt("%s/ca.key", ca),
	                          "-set_serial", serial, "-days", "2", "-extfile", ext, "-out", pem,
	                          NULL});
	return pem;
}

/* tls (NULL: all defaults) with every field filled and paths made absolute. */
static struct hx_tls
tls_settings(const struct hx_tls *tls)
{
	struct hx_tls t = {0};

	if (tls != NULL)
		t = *tls;
	if (t.cert == NULL)
		t.cert = hx_fmt("%s/server.pem", hx_certs());
	if (t.key == NULL)
		t.key = hx_fmt("%s/server.key", hx_certs());
	if (t.ca == NULL)
		t.ca = hx_fmt("%s/ca.pem", hx_certs());
	if (t.name == NULL)
		t.name = "127.0.0.1";
	if (t.upstream_host == NULL)
		t.upstream_host = "localhost";
	t.cert = absolute(t.cert);
	t.key = absolute(t.key);
	t.ca = absolute(t.ca);
	cr_assert(t.name[0] != '\0' && strlen(t.name) <= 40 && strpbrk(t.name, "/:@[] ") == NULL,
	          "harness: '%s' is not a usable TLS name", t.name);
	return t;
}

struct hx_stub *
hx_stub_start_tls_opts(const struct hx_tls *tls)
{
	struct hx_tls t = tls_settings(tls);
	struct hx_stub *s =
	        stub_launch((const char *const[]){"--tls-cert", t.cert, "--tls-key", t.key, NULL});

	snprintf(s->url, sizeof(s->url), "https://%s:%d", t.name, s->port);
	snprintf(s->ca_file, sizeof(s->ca_file), "%s", t.ca);
	snprintf(s->connect_to, sizeof(s->connect_to), "%s:%d:127.0.0.1:%d", t.name, s->port,
	         s->port);
	H.stub = s;
	/* The handshake the control calls need fails here, not in the middle of a test. */
	hx_resp_free(stub_call("GET", "/__stub/health", NULL));
	return s;
}

struct hx_stub *
hx_stub_start_tls(const char *cert, const char *key)
{
	struct hx_tls t = {.cert = cert, .key = key};

	return hx_stub_start_tls_opts(&t);
}

struct hx_gw *
hx_gw_prepare_tls(const char *policy_json, const char *config_overrides_json,
                  const struct hx_tls *tls)
{
	const char *policy = text_arg(policy_json), *overrides = text_arg(config_overrides_json);
	struct hx_tls t = tls_settings(tls);
	struct hx_stub *stub = hx_stub_start_tls_opts(&t);

	return gw_prepare(policy, overrides, stub,
	                  hx_fmt("https://%s:%d/v1", t.upstream_host, stub->port), t.ca);
}

struct hx_gw *
hx_gw_start_tls(const char *policy_json, const char *config_overrides_json,
                const struct hx_tls *tls)
{
	struct hx_gw *gw = hx_gw_prepare_tls(policy_json, config_overrides_json, tls);

	hx_gw_launch(gw);
	return gw;
}

/* ---- fixture ---- */

void
hx_init(void)
{
	memset(&H, 0, sizeof(H));
}

void
hx_fini(void)
{
	const char *keep_dir = getenv("GW_KEEP");

	/* Newest first: the gateway goes before the stub it talks to. */
	for (size_t i = H.nprocs; i-- > 0;) {
		int st = hx_proc_stop(H.procs[i]);

		cr_expect(!H.procs[i]->must_exit_clean || st == 0,
		          "harness: %s exited with status %d:\n%s", H.procs[i]->name, st,
		          tail(H.procs[i]->err_path));
	}
	for (size_t i = H.ncl; i-- > 0;)
		H.cl[i].fn(H.cl[i].p);
	free(H.cl);
	if (H.curl_ready)
		curl_global_cleanup();
	if (H.tmpdir[0] != '\0') {
		if (keep_dir != NULL && strcmp(keep_dir, "1") == 0)
			cr_log_info("harness: kept %s", H.tmpdir);
		else
			rm_tree(AT_FDCWD, H.tmpdir, 0);
	}
	memset(&H, 0, sizeof(H));
}
