/*
 * sseload: the bench's client for the sse scenario: many Server-Sent Events
 * streams held open at once through one proxy, with the time each takes to
 * its first event and what the proxy's memory does meanwhile.
 *
 *   sseload --port PORT --path PATH --body-file FILE --streams N
 *           [--ramp-ms MS] [--events E] [--rss-pid PID] [--timeout-s S]
 *
 * Opens N connections to 127.0.0.1:PORT, spread evenly over --ramp-ms (0:
 * all at once), and on each POSTs FILE to PATH (application/json, one
 * request a connection). Each answer must be 200 with an event stream
 * (chunked or read to the close); its events are counted where a blank
 * line ends one. A stream is good when its body ends after E events (E 0:
 * any number). The first-event time of a stream runs from the moment its
 * connect starts to the moment its first event is complete, so it holds
 * the connect, the request and whatever the proxy does before the
 * upstream's first event comes back through it.
 *
 * Every 50 ms it reads VmRSS of --rss-pid (the proxy) and counts the
 * streams open (first event in, body not ended); it keeps the reading
 * taken with the most streams open. It ends when every stream has ended
 * or after --timeout-s (120) and prints one line:
 *
 *   SSE streams= ok= failed= events= first_p50_us= first_p90_us=
 *       first_p99_us= first_max_us= first_mean_us= rss0_kb= rss_open_kb=
 *       open_at_rss= max_open= duration_us=
 *
 * One thread, one libevent loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define MAX_HEAD 16384

enum state { S_HEAD, S_SIZE, S_DATA, S_DATA_END, S_PLAIN, S_DONE };

struct stream {
	struct bufferevent *bev;
	long long t0, t_first; /* ns, monotonic */
	enum state st;
	long long left; /* bytes of the current chunk, or of a Content-Length body */
	long events;
	int status;
	int newline; /* the last byte of data ended a line */
	int open;    /* first event in, body not ended */
	int ended;
	int good;
};

static struct event_base *base;
static struct sockaddr_in addr;
static char *request;
static size_t request_len;
static struct stream *streams;
static long nstreams, started, ended, nopen, ngood, expect_events, ramp_ms, rss_pid;
static long max_open, open_at_rss, rss0, rss_open;
static long long t_start, t_end;
static unsigned long long total_events;

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* VmRSS of pid in kB, or 0. */
static long
rss_kb(long pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static void
finish(struct stream *s, int good)
{
	if (s->ended)
		return;
	s->ended = 1;
	if (s->open) {
		s->open = 0;
		nopen--;
	}
	s->good = good && s->status == 200 && s->t_first > 0 &&
	          (expect_events == 0 || s->events == expect_events);
	if (s->good)
		ngood++;
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (++ended == nstreams) {
		t_end = now_ns();
		event_base_loopexit(base, NULL);
	}
}

/* Body bytes, after any chunk framing: counts the events they end. */
static void
body_data(struct stream *s, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r')
			continue;
		if (p[i] != '\n') {
			s->newline = 0;
			continue;
		}
		if (!s->newline) {
			s->newline = 1;
			continue;
		}
		s->newline = 0;
		s->events++;
		total_events++;
		if (s->events == 1) {
			s->t_first = now_ns();
			s->open = 1;
			if (++nopen > max_open)
				max_open = nopen;
		}
	}
}

/* Whether the n bytes at p hold word, in any case. */
static int
has_word(const char *p, size_t n, const char *word)
{
	size_t k = strlen(word), i;

	for (i = 0; i + k <= n; i++)
		if (strncasecmp(p + i, word, k) == 0)
			return 1;
	return 0;
}

/* The status line and headers: whether the body is chunked, sized or
 * read to the close. */
static int
read_head(struct stream *s, struct evbuffer *in)
{
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	const char *head, *p, *eol;
	size_t n;

	if (end.pos < 0)
		return evbuffer_get_length(in) > MAX_HEAD ? -1 : 0;
	n = (size_t)end.pos + 4;
	head = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	if (n < 12 || strncmp(head, "HTTP/1.", 7) != 0)
		return -1;
	s->status = (int)strtol(head + 9, NULL, 10);
	s->st = S_PLAIN;
	s->left = -1;
	for (p = (const char *)memchr(head, '\n', n) + 1; p < head + n; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(head + n - p));
		if (eol == NULL)
			break;
		if (strncasecmp(p, "Transfer-Encoding:", 18) == 0 &&
		    has_word(p, (size_t)(eol - p), "chunked"))
			s->st = S_SIZE;
		else if (strncasecmp(p, "Content-Length:", 15) == 0)
			s->left = strtoll(p + 15, NULL, 10);
	}
	evbuffer_drain(in, n);
	if (s->st == S_PLAIN && s->left == 0)
		s->st = S_DONE;
	return 1;
}

/* Reads what came; 1 when the body has ended, -1 on a broken answer. */
static int
consume(struct stream *s, struct evbuffer *in)
{
	struct evbuffer_ptr eol;
	char line[32];
	size_t n, k;
	int rc;

	if (s->st == S_HEAD && (rc = read_head(s, in)) <= 0)
		return rc;
	for (;;) {
		n = evbuffer_get_length(in);
		switch (s->st) {
		case S_SIZE:
			eol = evbuffer_search(in, "\r\n", 2, NULL);
			if (eol.pos < 0)
				return n > 20 ? -1 : 0;
			k = (size_t)eol.pos < sizeof(line) - 1 ? (size_t)eol.pos : sizeof(line) - 1;
			evbuffer_copyout(in, line, k);
			line[k] = '\0';
			evbuffer_drain(in, (size_t)eol.pos + 2);
			s->left = strtoll(line, NULL, 16);
			if (s->left == 0)
				return 1; /* trailers, if any, are not waited for */
			s->st = S_DATA;
			break;
		case S_DATA:
			if (n == 0)
				return 0;
			k = n < (size_t)s->left ? n : (size_t)s->left;
			body_data(s, (const char *)evbuffer_pullup(in, (ev_ssize_t)k), k);
			evbuffer_drain(in, k);
			s->left -= (long long)k;
			if (s->left == 0)
				s->st = S_DATA_END;
			break;
		case S_DATA_END:
			if (n < 2)
				return 0;
			evbuffer_drain(in, 2);
			s->st = S_SIZE;
			break;
		case S_PLAIN:
			if (n == 0)
				return 0;
			k = s->left >= 0 && (size_t)s->left < n ? (size_t)s->left : n;
			body_data(s, (const char *)evbuffer_pullup(in, (ev_ssize_t)k), k);
			evbuffer_drain(in, k);
			if (s->left >= 0 && (s->left -= (long long)k) == 0)
				return 1;
			break;
		case S_DONE:
			return 1;
		case S_HEAD:
		default:
			return -1;
		}
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;
	int rc = consume(s, bufferevent_get_input(bev));

	if (rc != 0)
		finish(s, rc > 0);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct stream *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		bufferevent_write(bev, request, request_len);
		return;
	}
	/* EOF ends a body read to the close; anything else is a failure. */
	if ((what & BEV_EVENT_EOF) && s->st == S_PLAIN && s->left < 0) {
		finish(s, 1);
		return;
	}
	finish(s, 0);
}

static void
start_one(struct stream *s)
{
	int one = 1;

	s->t0 = now_ns();
	s->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		finish(s, 0);
		return;
	}
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_enable(s->bev, EV_READ);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		finish(s, 0);
		return;
	}
	(void)setsockopt(bufferevent_getfd(s->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Every millisecond: the streams the ramp says are due. */
static void
on_ramp(evutil_socket_t fd, short what, void *arg)
{
	long due;

	(void)fd;
	(void)what;
	if (ramp_ms <= 0)
		due = nstreams;
	else
		due = (long)((now_ns() - t_start) / 1000000LL * nstreams / ramp_ms) + 1;
	if (due > nstreams)
		due = nstreams;
	while (started < due)
		start_one(&streams[started++]);
	if (started == nstreams)
		event_del(arg);
}

static void
on_sample(evutil_socket_t fd, short what, void *arg)
{
	long kb;

	(void)fd;
	(void)what;
	(void)arg;
	if (nopen == 0 || nopen < open_at_rss)
		return;
	kb = rss_kb(rss_pid);
	if (nopen > open_at_rss || kb > rss_open) {
		open_at_rss = nopen;
		rss_open = kb;
	}
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	long i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = 0; i < nstreams; i++)
		if (!streams[i].ended)
			finish(&streams[i], 0);
	t_end = now_ns();
	event_base_loopexit(base, NULL);
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	} else {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		*len = (size_t)n;
	}
	if (f)
		fclose(f);
	return buf;
}

int
main(int argc, char **argv)
{
	const char *path = NULL, *body_file = NULL;
	struct event *ramp, *sample, *timeout;
	struct timeval ms1 = {0, 1000}, ms50 = {0, 50000}, tv;
	long port = -1, timeout_s = 120, i, n;
	long long *first, sum = 0;
	struct rlimit rl;
	size_t body_len = 0;
	char *body;

	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--path") == 0)
			path = argv[i + 1];
		else if (strcmp(argv[i], "--body-file") == 0)
			body_file = argv[i + 1];
		else if (strcmp(argv[i], "--streams") == 0)
			nstreams = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--ramp-ms") == 0)
			ramp_ms = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--events") == 0)
			expect_events = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--rss-pid") == 0)
			rss_pid = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--timeout-s") == 0)
			timeout_s = strtol(argv[i + 1], NULL, 10);
		else
			break;
	}
	if (i != argc || port < 1 || port > 65535 || path == NULL || body_file == NULL ||
	    nstreams < 1 || nstreams > 1000000 || ramp_ms < 0 || timeout_s < 1) {
		fprintf(stderr,
		        "usage: sseload --port PORT --path PATH --body-file FILE --streams N "
		        "[--ramp-ms MS] [--events E] [--rss-pid PID] [--timeout-s S]\n");
		return 2;
	}
	if ((body = slurp(body_file, &body_len)) == NULL) {
		fprintf(stderr, "sseload: cannot read %s: %s\n", body_file, strerror(errno));
		return 1;
	}
	n = snprintf(NULL, 0,
	             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\nContent-Type: application/json\r\n"
	             "Accept: text/event-stream\r\n"
	             "Authorization: Bearer sk-bench-not-a-real-key\r\nContent-Length: %zu\r\n\r\n",
	             path, port, body_len);
	request = malloc((size_t)n + body_len + 1);
	streams = calloc((size_t)nstreams, sizeof(*streams));
	first = calloc((size_t)nstreams, sizeof(*first));
	if (request == NULL || streams == NULL || first == NULL)
		return 1;
	snprintf(request, (size_t)n + 1,
	         "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\nContent-Type: application/json\r\n"
	         "Accept: text/event-stream\r\n"
	         "Authorization: Bearer sk-bench-not-a-real-key\r\nContent-Length: %zu\r\n\r\n",
	         path, port, body_len);
	memcpy(request + n, body, body_len);
	request_len = (size_t)n + body_len;
	free(body);

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	base = event_base_new();
	if (base == NULL)
		return 1;
	rss0 = rss_kb(rss_pid);
	ramp = event_new(base, -1, EV_PERSIST, on_ramp, event_self_cbarg());
	sample = event_new(base, -1, EV_PERSIST, on_sample, NULL);
	timeout = evtimer_new(base, on_timeout, NULL);
	tv.tv_sec = timeout_s;
	tv.tv_usec = 0;
	t_start = now_ns();
	event_add(ramp, &ms1);
	event_add(sample, &ms50);
	evtimer_add(timeout, &tv);
	on_ramp(-1, 0, ramp);
	event_base_dispatch(base);

	for (i = 0, n = 0; i < nstreams; i++)
		if (streams[i].t_first > 0) {
			first[n] = streams[i].t_first - streams[i].t0;
			sum += first[n++];
		}
	qsort(first, (size_t)n, sizeof(*first), cmp_ll);
#define PCT(p) (n ? first[(n - 1) * (p) / 100] / 1000 : 0)
	printf("SSE streams=%ld ok=%ld failed=%ld events=%llu first_p50_us=%lld first_p90_us=%lld "
	       "first_p99_us=%lld first_max_us=%lld first_mean_us=%lld rss0_kb=%ld rss_open_kb=%ld "
	       "open_at_rss=%ld max_open=%ld duration_us=%lld\n",
	       nstreams, ngood, nstreams - ngood, total_events, PCT(50), PCT(90), PCT(99), PCT(100),
	       n ? sum / n / 1000 : 0, rss0, rss_open, open_at_rss, max_open,
	       (t_end - t_start) / 1000);
#undef PCT
	event_free(ramp);
	event_free(sample);
	event_free(timeout);
	event_base_free(base);
	free(first);
	free(streams);
	free(request);
	return 0;
}
