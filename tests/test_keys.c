/* test_keys: reading a Bearer credential as HTTP defines it, so that no
 * spelling of a tenant's key can go unrecognised. */
#include <criterion/criterion.h>
#include <string.h>

#include "policy/keys.h"

static int
bearer(const char *value, const char **tok, size_t *len)
{
	return keys_bearer(value, strlen(value), tok, len);
}

Test(keys, bearer_takes_any_case_and_any_run_of_spaces_and_tabs)
{
	static const char *const ok[] = {"Bearer sk-a.b_c~d+e/f==", "bearer sk-a.b_c~d+e/f==",
	                                 "BEARER\tsk-a.b_c~d+e/f==", "BeArEr \t  sk-a.b_c~d+e/f=="};
	const char *tok;
	size_t len, i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(bearer(ok[i], &tok, &len), 0, "%s", ok[i]);
		cr_expect_eq(len, strlen("sk-a.b_c~d+e/f=="), "%s", ok[i]);
		cr_expect(strncmp(tok, "sk-a.b_c~d+e/f==", len) == 0, "%s", ok[i]);
	}
}

Test(keys, anything_else_is_not_a_bearer_credential)
{
	static const char *const bad[] = {
	        "",
	        "Bearer",
	        "Bearer ",
	        "Bearersk-a",
	        "Basic c2s=",
	        "Bearer a b",
	        "Bearer a,b",
	        "Bearer =abc",
	        "Bearer a=b",
	        "Bearer a\x7f",
	        "Bearer \"a\"",
	        "Bearer a\r\n",
	        "Bearer\vsk-a",
	        "Bearer sk-\xc3\xa9",
	        "Token sk-a",
	        "Bearer: sk-a",
	        "Bearer\x00sk-a",
	};
	const char *tok = NULL;
	size_t len = 0, i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(bearer(bad[i], &tok, &len), -1, "%zu: %s", i, bad[i]);
	/* A NUL inside the value is not the end of it. */
	cr_expect_eq(keys_bearer("Bearer sk-a\0b", 13, &tok, &len), -1);
}
