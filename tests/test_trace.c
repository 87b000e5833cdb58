/*
 * test_trace: the traceparent header as W3C Trace Context reads it: what
 * is followed, what is ignored (a new trace starts), and what goes on.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "http/trace.h"

static int
parses(const char *v)
{
	struct trace_context t;

	return trace_parse(v, strlen(v), &t) == 0;
}

Test(trace, a_valid_traceparent_is_followed)
{
	struct trace_context t;
	const char *v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	char out[TRACE_HEADER + 1];

	trace_start(&t, v, strlen(v));
	cr_expect_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_expect_str_eq(t.parent_id, "00f067aa0ba902b7");
	cr_expect_eq(t.sampled, 1);
	cr_expect_eq(strlen(t.span_id), 16);
	cr_expect_str_neq(t.span_id, t.parent_id, "the gateway's span is its own");
	trace_header(&t, out);
	cr_expect_eq(strncmp(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0, "%s", out);
	cr_expect_eq(strncmp(out + 36, t.span_id, 16), 0, "%s", out);
	cr_expect_str_eq(out + 52, "-01");
}

Test(trace, what_the_specification_calls_invalid_is_ignored)
{
	static const char *const bad[] = {
	        "",
	        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* no flags */
	        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
	        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
	        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent */
	        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
	        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 is exact */
	        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* no dash after */
	        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
	        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	struct trace_context t;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect(!parses(bad[i]), "followed: '%s'", bad[i]);
		trace_start(&t, bad[i], strlen(bad[i]));
		cr_expect_str_neq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "'%s'", bad[i]);
		cr_expect_eq(t.parent_id[0], '\0', "a new trace has no parent: '%s'", bad[i]);
		cr_expect_eq(strlen(t.trace_id), 32);
		cr_expect_eq(t.sampled, 1);
	}
}

Test(trace, a_later_version_is_read_by_its_first_fields)
{
	cr_expect(parses("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
	cr_expect(parses("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes"));
}

Test(trace, not_sampled_is_kept)
{
	struct trace_context t;
	const char *v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
	char out[TRACE_HEADER + 1];

	trace_start(&t, v, strlen(v));
	cr_expect_eq(t.sampled, 0);
	trace_header(&t, out);
	cr_expect_str_eq(out + 52, "-00");
}

Test(trace, new_traces_differ)
{
	struct trace_context a, b;

	trace_start(&a, NULL, 0);
	trace_start(&b, NULL, 0);
	cr_expect_str_neq(a.trace_id, b.trace_id);
	cr_expect_str_neq(a.span_id, b.span_id);
}
