/*
 * slowup: the bench's own upstream, for the scenarios a static nginx
 * cannot serve honestly.
 *
 *   slowup --port PORT --body-file FILE [--delay-ms MS]
 *          [--sse-events N --sse-interval-ms MS]
 *
 * Answers every POST whose path ends in /containers (any prefix) with 200
 * and the bytes of FILE as application/json, MS milliseconds after the
 * request's body has been read in full. Anything else gets 404.
 *
 * - concurrency: nginx's standard modules cannot hold an answer back, so
 *   this holds each one for --delay-ms (1000) without tying anything up but
 *   a timer, and thousands of requests can be in flight at once.
 * - large-body: nginx's `return` answers before it has read (discarded) a
 *   64 MiB body, so a proxy could be timed on a body it never finished
 *   sending. Here the answer only leaves once the last byte has arrived,
 *   with --delay-ms 0. Bodies are counted and dropped, never buffered.
 * - sse: with --sse-events N, a POST whose path ends in /responses gets a
 *   Responses stream (text/event-stream, chunked) as soon as its body is
 *   in: response.created at once, then N output_text.delta events and
 *   response.completed, one every --sse-interval-ms, so thousands of
 *   streams can be held open for as long as a scenario needs.
 *
 * HTTP/1.1 keep-alive with Content-Length bodies only (every proxy under
 * test sends those); chunked bodies get 501 and a close. One thread, one
 * libevent loop; stops on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define MAX_HEAD 65536

struct conn {
	struct bufferevent *bev;
	struct event *timer;
	unsigned long long body_left; /* bytes of the current body still to come */
	int in_body;                  /* reading a body rather than a head */
	int waiting;                  /* an answer is held back or being written */
	int status;                   /* what the held-back answer will be */
	int close_after;              /* the client asked for, or we need, a close */
	int sse;                      /* the answer is an event stream */
	int sse_left;                 /* its deltas still to send */
	int sse_seq;                  /* the next event's sequence_number */
};

static char *answer;
static size_t answer_len;
static const struct timeval *delay; /* a libevent common timeout, or NULL */
static long sse_events;             /* deltas in each stream; 0: no streams */
static const struct timeval *sse_interval;

/* A Responses stream, as the API sends it for a short text answer. */
#define SSE_RESPONSE                                                                               \
	"{\"id\":\"resp_68c0a1b2c3d4e5f60718293a4b5c6d7e\",\"object\":\"response\","               \
	"\"created_at\":1764844800,\"status\":\"%s\",\"model\":\"gpt-4.1-2025-04-14\","            \
	"\"output\":[],\"parallel_tool_calls\":true,\"tool_choice\":\"auto\",\"tools\":[],"        \
	"\"usage\":%s}"
#define SSE_CREATED                                                                                \
	"event: response.created\ndata: {\"type\":\"response.created\","                           \
	"\"sequence_number\":%d,\"response\":" SSE_RESPONSE "}\n\n"
#define SSE_DELTA                                                                                  \
	"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","       \
	"\"sequence_number\":%d,\"item_id\":\"msg_68c0a1b2c3d4e5f60718293a4b5c6d7f\","             \
	"\"output_index\":0,\"content_index\":0,\"delta\":\" proxies\",\"logprobs\":[]}\n\n"
#define SSE_COMPLETED                                                                              \
	"event: response.completed\ndata: {\"type\":\"response.completed\","                       \
	"\"sequence_number\":%d,\"response\":" SSE_RESPONSE "}\n\n"

static void conn_process(struct conn *c);

static void
conn_free(struct conn *c)
{
	event_free(c->timer);
	bufferevent_free(c->bev);
	free(c);
}

/* Finds a header in a head (the bytes up to and including the blank line)
 * and returns its value, or NULL; len gets the value's length. */
static const char *
header(const char *head, size_t n, const char *name, size_t *len)
{
	size_t k = strlen(name);
	const char *p = memchr(head, '\n', n), *end = head + n, *eol, *v;

	while (p && p + 1 < end) {
		p++;
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			break;
		if ((size_t)(eol - p) > k && p[k] == ':' && strncasecmp(p, name, k) == 0) {
			v = p + k + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(eol - v);
			while (*len && (v[*len - 1] == '\r' || v[*len - 1] == ' '))
				(*len)--;
			return v;
		}
		p = eol;
	}
	return NULL;
}

static void
send_answer(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->status == 200)
		evbuffer_add_printf(out,
		                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		                    "Content-Length: %zu\r\n%s\r\n",
		                    answer_len, c->close_after ? "Connection: close\r\n" : "");
	else
		evbuffer_add_printf(out, "HTTP/1.1 %d Nope\r\nContent-Length: 0\r\n%s\r\n",
		                    c->status, c->close_after ? "Connection: close\r\n" : "");
	if (c->status == 200)
		evbuffer_add_reference(out, answer, answer_len, NULL, NULL);
	/* on_write runs once this has all been handed to the kernel. */
}

/* One event of a stream, as one chunk; the last is followed by the end
 * of the body. */
static void
send_event(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char ev[1024];
	int n;

	if (c->sse_seq == 0)
		n = snprintf(ev, sizeof(ev), SSE_CREATED, c->sse_seq, "in_progress", "null");
	else if (c->sse_left-- > 0)
		n = snprintf(ev, sizeof(ev), SSE_DELTA, c->sse_seq);
	else
		n = snprintf(ev, sizeof(ev), SSE_COMPLETED, c->sse_seq, "completed",
		             "{\"input_tokens\":12,\"output_tokens\":40,\"total_tokens\":52}");
	c->sse_seq++;
	evbuffer_add_printf(out, "%x\r\n", n);
	evbuffer_add(out, ev, (size_t)n);
	evbuffer_add(out, "\r\n", 2);
	if (c->sse_left < 0) {
		c->sse = 0;
		evbuffer_add(out, "0\r\n\r\n", 5);
	} else {
		evtimer_add(c->timer, sse_interval);
	}
}

static void
start_stream(struct conn *c)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
	                    "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n%s\r\n",
	                    c->close_after ? "Connection: close\r\n" : "");
	c->sse_seq = 0;
	c->sse_left = (int)sse_events;
	send_event(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->sse) {
		send_event(c);
		return;
	}
	send_answer(c);
}

/* The whole request is in: answer now or after the delay. */
static void
request_done(struct conn *c)
{
	c->in_body = 0;
	c->waiting = 1;
	bufferevent_disable(c->bev, EV_READ); /* a pipelined request waits its turn */
	if (c->sse)
		start_stream(c);
	else if (delay && c->status == 200)
		evtimer_add(c->timer, delay);
	else
		send_answer(c);
}

/* Parses one request head off the input; 0 when more bytes are needed. */
static int
read_head(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	const char *head, *v, *sp1, *sp2;
	size_t n, len, plen;
	char num[32];

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > MAX_HEAD) {
			c->status = 431;
			c->close_after = 1;
			request_done(c);
		}
		return 0;
	}
	n = (size_t)end.pos + 4;
	head = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	c->status = 404;
	c->close_after = 0;
	c->body_left = 0;
	c->sse = 0;
	/* "POST /any/prefix/containers HTTP/1.1" */
	sp1 = memchr(head, ' ', n);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - head)) : NULL;
	if (sp1 && sp2) {
		plen = (size_t)(sp2 - sp1 - 1);
		if (sp1 - head == 4 && memcmp(head, "POST", 4) == 0 && plen >= 11 &&
		    memcmp(sp2 - 11, "/containers", 11) == 0)
			c->status = 200;
		if (sse_events > 0 && sp1 - head == 4 && memcmp(head, "POST", 4) == 0 &&
		    plen >= 10 && memcmp(sp2 - 10, "/responses", 10) == 0) {
			c->status = 200;
			c->sse = 1;
		}
		if (strncmp(sp2 + 1, "HTTP/1.0", 8) == 0)
			c->close_after = 1;
	} else {
		c->status = 400;
		c->close_after = 1;
	}
	if ((v = header(head, n, "Connection", &len)) != NULL && len == 5 &&
	    strncasecmp(v, "close", 5) == 0)
		c->close_after = 1;
	if (header(head, n, "Transfer-Encoding", &len) != NULL) {
		c->status = 501;
		c->close_after = 1;
	} else if ((v = header(head, n, "Content-Length", &len)) != NULL) {
		if (len == 0 || len >= sizeof(num)) {
			c->status = 400;
			c->close_after = 1;
		} else {
			memcpy(num, v, len);
			num[len] = '\0';
			c->body_left = strtoull(num, NULL, 10);
		}
	}
	evbuffer_drain(in, n);
	if (c->close_after && c->status != 200) {
		request_done(c);
		return 0;
	}
	c->in_body = 1;
	return 1;
}

static void
conn_process(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n;

	while (!c->waiting) {
		if (!c->in_body && !read_head(c, in))
			return;
		n = evbuffer_get_length(in);
		if (n > c->body_left)
			n = (size_t)c->body_left;
		evbuffer_drain(in, n);
		c->body_left -= n;
		if (c->body_left > 0)
			return;
		request_done(c);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (!c->waiting || c->sse)
		return; /* a stream is done once its last chunk has been written */
	if (c->close_after) {
		conn_free(c);
		return;
	}
	c->waiting = 0;
	bufferevent_enable(c->bev, EV_READ);
	conn_process(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg); /* EOF or error: a held-back answer just goes with it */
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct event_base *base = arg;
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(base, on_timer, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->timer)
			event_free(c->timer);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* Out of descriptors, most likely: say so once a burst, keep going. */
	fprintf(stderr, "slowup: accept: %s\n", strerror(errno));
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
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
		/* A trailing newline from an editor is not part of the answer. */
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
	struct sockaddr_in sin;
	struct event_base *base;
	struct evconnlistener *l;
	struct event *sigint, *sigterm;
	struct timeval tv;
	struct rlimit rl;
	long port = -1, delay_ms = 0, sse_interval_ms = 1000;
	const char *body_file = NULL;
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--delay-ms") == 0)
			delay_ms = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--body-file") == 0)
			body_file = argv[i + 1];
		else if (strcmp(argv[i], "--sse-events") == 0)
			sse_events = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--sse-interval-ms") == 0)
			sse_interval_ms = strtol(argv[i + 1], NULL, 10);
		else
			break;
	}
	if (i != argc || port < 1 || port > 65535 || delay_ms < 0 || body_file == NULL ||
	    sse_events < 0 || sse_events > 1000000 || sse_interval_ms < 1) {
		fprintf(stderr, "usage: slowup --port PORT --body-file FILE [--delay-ms MS] "
		                "[--sse-events N --sse-interval-ms MS]\n");
		return 2;
	}
	if ((answer = slurp(body_file, &answer_len)) == NULL) {
		fprintf(stderr, "slowup: cannot read %s: %s\n", body_file, strerror(errno));
		return 1;
	}
	/* One descriptor per client: use all the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);

	base = event_base_new();
	if (base == NULL)
		return 1;
	if (delay_ms > 0) {
		/* Every request waits the same time: a common timeout keeps
		 * the timers in a queue instead of a heap of 10,000. */
		tv.tv_sec = delay_ms / 1000;
		tv.tv_usec = (delay_ms % 1000) * 1000;
		delay = event_base_init_common_timeout(base, &tv);
	}
	tv.tv_sec = sse_interval_ms / 1000;
	tv.tv_usec = (sse_interval_ms % 1000) * 1000;
	sse_interval = event_base_init_common_timeout(base, &tv);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(base, on_accept, base,
	                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
	                            (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL) {
		fprintf(stderr, "slowup: cannot listen on 127.0.0.1:%ld: %s\n", port,
		        strerror(errno));
		return 1;
	}
	evconnlistener_set_error_cb(l, on_accept_error);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	event_base_dispatch(base);
	/* Connections still open are left to the kernel: the process is
	 * about to exit anyway. */
	evconnlistener_free(l);
	event_free(sigint);
	event_free(sigterm);
	event_base_free(base);
	free(answer);
	return 0;
}
