#include "policy/schema.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/jsondoc.h"

enum kind { K_OBJECT, K_ARRAY, K_STRING, K_INTEGER, K_BOOLEAN, K_ONEOF, K_EITHER };

struct prop {
	const char *name;
	const struct schema *s;
	int required;
};

struct variant {
	const char *tag;
	const struct schema *s;
};

struct schema {
	enum kind kind;
	/* null is as good as a value: optional response fields, and request
	 * fields the spec writes as anyOf [..., null]. */
	int nullable;

	/* K_OBJECT: props ends with a NULL name. */
	const struct prop *props;
	int open;          /* unknown keys allowed */
	int null_optional; /* an optional property may be null */

	/* K_ARRAY: max_items 0 means none. */
	const struct schema *items;
	size_t min_items, max_items;

	/* K_STRING: lengths in code points; max_len 0 means none. */
	size_t min_len, max_len;
	const char *const *enumv;
	int secret; /* never quoted back */
	int (*format)(const char *s, size_t len);
	const char *format_desc;

	/* K_INTEGER */
	int has_min;
	long long min;

	/* K_ONEOF: an object whose disc property picks the variant. */
	const char *disc;
	const struct variant *variants;

	/* K_EITHER: a value of one of these kinds (each a different JSON
	 * type), checked against the one its type picks; ends with NULL. */
	const struct schema *const *alts;
};

static const char *const memory_limits[] = {"1g", "4g", "16g", "64g", NULL};
static const char *const anchors[] = {"last_active_at", NULL};
static const char *const np_types[] = {"allowlist", "disabled", NULL};
static const char *const list_object[] = {"list", NULL};

static const struct schema any_string = {.kind = K_STRING};
static const struct schema str_or_null = {.kind = K_STRING, .nullable = 1};
static const struct schema integer = {.kind = K_INTEGER};
static const struct schema boolean = {.kind = K_BOOLEAN};
static const struct schema str_array = {.kind = K_ARRAY, .items = &any_string};
static const struct schema memory_limit = {.kind = K_STRING, .enumv = memory_limits};
static const struct schema anchor = {.kind = K_STRING, .enumv = anchors};

/* "Use a positive integer or 'latest'", from the spec's description of
 * SkillReferenceParam.version; the gateway holds clients to it. */
static int
skill_version_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 6 && memcmp(s, "latest", 6) == 0)
		return 1;
	if (len == 0 || len > 18 || s[0] == '0')
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* --- CreateContainerBody ---------------------------------------------- */

/* The spec sets no minimum; a container that expires after zero or
 * negative minutes is never what a client meant, so the gateway refuses. */
static const struct schema minutes = {.kind = K_INTEGER, .has_min = 1, .min = 1};

static const struct schema expires_after_param = {
        .kind = K_OBJECT,
        .props = (const struct prop[]){{"anchor", &anchor, 1}, {"minutes", &minutes, 1}, {NULL}},
};

static const struct schema skill_reference_param = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){
                                 .kind = K_STRING,
                                 .enumv = (const char *const[]){"skill_reference", NULL}},
                         1},
                        {"skill_id",
                         &(const struct schema){.kind = K_STRING, .min_len = 1, .max_len = 64}, 1},
                        {"version",
                         &(const struct schema){
                                 .kind = K_STRING,
                                 .format = skill_version_ok,
                                 .format_desc =
                                         "a positive integer of at most 18 digits, or \"latest\""},
                         0},
                        {NULL}},
};

static const struct schema inline_skill_source_param = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){.kind = K_STRING,
                                                .enumv = (const char *const[]){"base64", NULL}},
                         1},
                        {"media_type",
                         &(const struct schema){
                                 .kind = K_STRING,
                                 .enumv = (const char *const[]){"application/zip", NULL}},
                         1},
                        {"data",
                         &(const struct schema){
                                 .kind = K_STRING, .min_len = 1, .max_len = 70254592},
                         1},
                        {NULL}},
};

static const struct schema inline_skill_param = {
        .kind = K_OBJECT,
        .props = (const struct prop[]){{"type",
                                        &(const struct schema){
                                                .kind = K_STRING,
                                                .enumv = (const char *const[]){"inline", NULL}},
                                        1},
                                       {"name", &any_string, 1},
                                       {"description", &any_string, 1},
                                       {"source", &inline_skill_source_param, 1},
                                       {NULL}},
};

static const struct schema skill_param = {
        .kind = K_ONEOF,
        .disc = "type",
        .variants = (const struct variant[]){{"skill_reference", &skill_reference_param},
                                             {"inline", &inline_skill_param},
                                             {NULL}},
};

static const struct schema domain_secret_param = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"domain", &(const struct schema){.kind = K_STRING, .min_len = 1}, 1},
                        {"name", &(const struct schema){.kind = K_STRING, .min_len = 1}, 1},
                        {"value",
                         &(const struct schema){
                                 .kind = K_STRING, .min_len = 1, .max_len = 10485760, .secret = 1},
                         1},
                        {NULL}},
};

static const struct schema network_policy_disabled_param = {
        .kind = K_OBJECT,
        .props = (const struct prop[]){{"type",
                                        &(const struct schema){
                                                .kind = K_STRING,
                                                .enumv = (const char *const[]){"disabled", NULL}},
                                        1},
                                       {NULL}},
};

static const struct schema network_policy_allowlist_param = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){.kind = K_STRING,
                                                .enumv = (const char *const[]){"allowlist", NULL}},
                         1},
                        {"allowed_domains",
                         &(const struct schema){
                                 .kind = K_ARRAY, .items = &any_string, .min_items = 1},
                         1},
                        {"domain_secrets",
                         &(const struct schema){
                                 .kind = K_ARRAY, .items = &domain_secret_param, .min_items = 1},
                         0},
                        {NULL}},
};

static const struct schema network_policy_param = {
        .kind = K_ONEOF,
        .disc = "type",
        .variants = (const struct variant[]){{"disabled", &network_policy_disabled_param},
                                             {"allowlist", &network_policy_allowlist_param},
                                             {NULL}},
};

const struct schema schema_create_container_body = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"name", &any_string, 1},
                        {"file_ids", &str_array, 0},
                        {"expires_after", &expires_after_param, 0},
                        {"skills", &(const struct schema){.kind = K_ARRAY, .items = &skill_param},
                         0},
                        {"memory_limit", &memory_limit, 0},
                        {"network_policy", &network_policy_param, 0},
                        {NULL}},
};

const struct schema schema_create_container_file_body = {
        .kind = K_OBJECT,
        .props = (const struct prop[]){{"file_id", &any_string, 0}, {NULL}},
};

/* --- Responses tools that make or use containers -------------------------
 *
 * CodeInterpreterTool and FunctionShellToolParam from openapi.yaml (the
 * Responses API), with the container configs they carry. The network
 * policy and skill schemas are the ones CreateContainerBody uses: the spec
 * names the same ContainerNetworkPolicy*Param, SkillReferenceParam and
 * InlineSkillParam for both. Unlike CreateContainerBody, these configs have
 * maxItems (file_ids 50, skills 200) and a memory_limit that may be null.
 */

/* CallableToolAllowedCaller, as anyOf [array (minItems 1), null]. */
static const struct schema allowed_callers = {
        .kind = K_ARRAY,
        .nullable = 1,
        .min_items = 1,
        .items = &(const struct schema){.kind = K_STRING,
                                        .enumv = (const char *const[]){"direct", "programmatic",
                                                                       NULL}},
};

/* ContainerMemoryLimit, as anyOf [ContainerMemoryLimit, null]. */
static const struct schema tool_memory_limit = {
        .kind = K_STRING, .nullable = 1, .enumv = memory_limits};

static const struct schema tool_file_ids = {.kind = K_ARRAY, .items = &any_string, .max_items = 50};

/* AutoCodeInterpreterToolParam. */
static const struct schema auto_code_interpreter_tool_param = {
        .kind = K_OBJECT,
        .props = (const struct prop[]){{"type",
                                        &(const struct schema){
                                                .kind = K_STRING,
                                                .enumv = (const char *const[]){"auto", NULL}},
                                        1},
                                       {"file_ids", &tool_file_ids, 0},
                                       {"memory_limit", &tool_memory_limit, 0},
                                       {"network_policy", &network_policy_param, 0},
                                       {NULL}},
};

const struct schema schema_code_interpreter_tool = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){
                                 .kind = K_STRING,
                                 .enumv = (const char *const[]){"code_interpreter", NULL}},
                         1},
                        /* A container id, or a container made for the request. */
                        {"container",
                         &(const struct schema){
                                 .kind = K_EITHER,
                                 .alts =
                                         (const struct schema *const[]){
                                                 &any_string,
                                                 &auto_code_interpreter_tool_param, NULL}},
                         1},
                        {"allowed_callers", &allowed_callers, 0},
                        {NULL}},
};

/* ContainerAutoParam. */
static const struct schema container_auto_param = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){
                                 .kind = K_STRING,
                                 .enumv = (const char *const[]){"container_auto", NULL}},
                         1},
                        {"file_ids", &tool_file_ids, 0},
                        {"memory_limit", &tool_memory_limit, 0},
                        {"network_policy", &network_policy_param, 0},
                        {"skills",
                         &(const struct schema){
                                 .kind = K_ARRAY, .items = &skill_param, .max_items = 200},
                         0},
                        {NULL}},
};

/* LocalSkillParam. */
static const struct schema local_skill_param = {
        .kind = K_OBJECT,
        .props = (const struct prop[]){{"name", &any_string, 1},
                                       {"description", &any_string, 1},
                                       {"path", &any_string, 1},
                                       {NULL}},
};

/* LocalEnvironmentParam: the client's own machine; nothing to police, but
 * the entry is the gateway's to check whole. */
static const struct schema local_environment_param = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){.kind = K_STRING,
                                                .enumv = (const char *const[]){"local", NULL}},
                         1},
                        {"skills",
                         &(const struct schema){
                                 .kind = K_ARRAY, .items = &local_skill_param, .max_items = 200},
                         0},
                        {NULL}},
};

/* ContainerReferenceParam. */
static const struct schema container_reference_param = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){
                                 .kind = K_STRING,
                                 .enumv = (const char *const[]){"container_reference", NULL}},
                         1},
                        {"container_id", &any_string, 1},
                        {NULL}},
};

const struct schema schema_shell_tool = {
        .kind = K_OBJECT,
        .props =
                (const struct prop[]){
                        {"type",
                         &(const struct schema){.kind = K_STRING,
                                                .enumv = (const char *const[]){"shell", NULL}},
                         1},
                        {"environment",
                         &(const struct schema){
                                 .kind = K_ONEOF,
                                 .nullable = 1,
                                 .disc = "type",
                                 .variants =
                                         (const struct variant[]){
                                                 {"container_auto", &container_auto_param},
                                                 {"local", &local_environment_param},
                                                 {"container_reference",
                                                  &container_reference_param},
                                                 {NULL}}},
                         0},
                        {"allowed_callers", &allowed_callers, 0},
                        {NULL}},
};

/* --- Responses ---------------------------------------------------------- */

const struct schema schema_container_resource = {
        .kind = K_OBJECT,
        .open = 1,
        .null_optional = 1,
        .props =
                (const struct prop[]){
                        {"id", &any_string, 1},
                        {"object", &any_string, 1},
                        {"name", &any_string, 1},
                        {"created_at", &integer, 1},
                        {"status", &any_string, 1},
                        {"last_active_at", &integer, 0},
                        {"expires_after",
                         &(const struct schema){
                                 .kind = K_OBJECT,
                                 .open = 1,
                                 .null_optional = 1,
                                 .props = (const struct prop[]){{"anchor", &anchor, 0},
                                                                {"minutes", &integer, 0},
                                                                {NULL}}},
                         0},
                        {"memory_limit", &memory_limit, 0},
                        {"network_policy",
                         &(const struct schema){
                                 .kind = K_OBJECT,
                                 .open = 1,
                                 .null_optional = 1,
                                 .props = (const struct prop[]){{"type",
                                                                 &(const struct schema){
                                                                         .kind = K_STRING,
                                                                         .enumv = np_types},
                                                                 1},
                                                                {"allowed_domains", &str_array, 0},
                                                                {NULL}}},
                         0},
                        {NULL}},
};

/* Lists: the real API sends null first_id and last_id for an empty page. */
const struct schema schema_container_list_resource = {
        .kind = K_OBJECT,
        .open = 1,
        .props =
                (const struct prop[]){
                        {"object", &(const struct schema){.kind = K_STRING, .enumv = list_object},
                         1},
                        {"data",
                         &(const struct schema){.kind = K_ARRAY,
                                                .items = &schema_container_resource},
                         1},
                        {"first_id", &str_or_null, 1},
                        {"last_id", &str_or_null, 1},
                        {"has_more", &boolean, 1},
                        {NULL}},
};

const struct schema schema_container_file_resource = {
        .kind = K_OBJECT,
        .open = 1,
        .props = (const struct prop[]){{"id", &any_string, 1},
                                       {"object", &any_string, 1},
                                       {"created_at", &integer, 1},
                                       {"bytes", &integer, 1},
                                       {"container_id", &any_string, 1},
                                       {"path", &any_string, 1},
                                       {"source", &any_string, 1},
                                       {NULL}},
};

const struct schema schema_container_file_list_resource = {
        .kind = K_OBJECT,
        .open = 1,
        .props =
                (const struct prop[]){
                        {"object", &(const struct schema){.kind = K_STRING, .enumv = list_object},
                         1},
                        {"data",
                         &(const struct schema){.kind = K_ARRAY,
                                                .items = &schema_container_file_resource},
                         1},
                        {"first_id", &str_or_null, 1},
                        {"last_id", &str_or_null, 1},
                        {"has_more", &boolean, 1},
                        {NULL}},
};

/* --- The walker --------------------------------------------------------- */

size_t
schema_utf8_length(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction or exponent";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

static const char *
kind_name(enum kind k)
{
	switch (k) {
	case K_OBJECT:
	case K_ONEOF:
	case K_EITHER: /* named by its alternatives, see either_names */
		return "an object";
	case K_ARRAY:
		return "an array";
	case K_STRING:
		return "a string";
	case K_INTEGER:
		return "an integer";
	case K_BOOLEAN:
	default:
		return "a boolean";
	}
}

/* "a", "b" and "c" as a quoted list. */
static void
join_quoted(char *dst, size_t n, const char *const *v)
{
	size_t o = 0, i;

	dst[0] = '\0';
	for (i = 0; v[i] && o < n; i++)
		o += (size_t)snprintf(dst + o, n - o, "%s\"%s\"", i ? ", " : "", v[i]);
}

static void
join_props(char *dst, size_t n, const struct prop *p)
{
	size_t o = 0, i;

	dst[0] = '\0';
	for (i = 0; p[i].name && o < n; i++)
		o += (size_t)snprintf(dst + o, n - o, "%s%s", i ? ", " : "", p[i].name);
}

/* "a string or an object": the kinds a K_EITHER takes. */
static const char *
either_names(const struct schema *s, char *dst, size_t n)
{
	size_t o = 0, i;

	dst[0] = '\0';
	for (i = 0; s->alts[i] && o < n; i++)
		o += (size_t)snprintf(dst + o, n - o, "%s%s", i ? " or " : "",
		                      kind_name(s->alts[i]->kind));
	return dst;
}

/* Whether v is of the JSON type kind k reads. */
static int
is_kind(enum kind k, const json_t *v)
{
	switch (k) {
	case K_OBJECT:
	case K_ONEOF:
		return json_is_object(v);
	case K_ARRAY:
		return json_is_array(v);
	case K_STRING:
		return json_is_string(v);
	case K_INTEGER:
		return json_is_integer(v);
	case K_BOOLEAN:
		return json_is_boolean(v);
	case K_EITHER:
	default:
		return 0;
	}
}

/* The alternative of a K_EITHER that v's type picks, or NULL. */
static const struct schema *
either_pick(const struct schema *s, const json_t *v)
{
	size_t i;

	for (i = 0; s->alts[i]; i++)
		if (is_kind(s->alts[i]->kind, v))
			return s->alts[i];
	return NULL;
}

static const char *
where(const char *path)
{
	return *path ? path : "the body";
}

static int check(const struct schema *s, const json_t *v, char *path, size_t n, struct err *e);

/* A string left in the spool (jsondoc.h): its length is all there is to
 * check; an enum or a format (short values) it cannot be. */
static int
check_spooled(const struct schema *s, const struct jsondoc_spooled *sp, const char *path,
              struct err *e)
{
	if (s->enumv || s->format)
		return err_set(e, 400, ERR_INVALID, "invalid_value", path,
		               "%s must be %s; got a string of %llu characters", path,
		               s->enumv ? "one of a few short values" : s->format_desc,
		               (unsigned long long)sp->chars);
	if (sp->chars < s->min_len)
		return err_set(e, 400, ERR_INVALID, "string_too_short", path,
		               "%s must be at least %zu characters long", path, s->min_len);
	if (s->max_len && sp->chars > s->max_len)
		return err_set(e, 400, ERR_INVALID, "string_too_long", path,
		               "%s must be at most %zu characters long; got %llu", path, s->max_len,
		               (unsigned long long)sp->chars);
	return 0;
}

static int
check_string(const struct schema *s, const json_t *v, const char *path, struct err *e)
{
	const char *str = json_string_value(v);
	size_t len = json_string_length(v), chars, i;
	char list[256], q[96];
	struct jsondoc_spooled sp;

	if (jsondoc_spooled_of(v, &sp))
		return check_spooled(s, &sp, path, e);

	if (s->enumv) {
		for (i = 0; s->enumv[i]; i++)
			if (strlen(s->enumv[i]) == len && memcmp(s->enumv[i], str, len) == 0)
				break;
		if (s->enumv[i] == NULL) {
			join_quoted(list, sizeof(list), s->enumv);
			return err_set(e, 400, ERR_INVALID, "invalid_value", path,
			               "%s must be %s%s; got %s", path, i > 1 ? "one of " : "",
			               list, err_quote(q, sizeof(q), str, len));
		}
	}
	/* Code points never outnumber bytes, so counting is needed only when
	 * the byte length alone cannot decide. */
	if (len < s->min_len)
		return err_set(e, 400, ERR_INVALID, "string_too_short", path,
		               "%s must be at least %zu character%s long", path, s->min_len,
		               s->min_len == 1 ? "" : "s");
	if (s->max_len && len > s->max_len) {
		chars = schema_utf8_length(str, len);
		if (chars > s->max_len)
			return err_set(e, 400, ERR_INVALID, "string_too_long", path,
			               "%s must be at most %zu characters long; got %zu", path,
			               s->max_len, chars);
	}
	if (s->format && !s->format(str, len))
		return err_set(e, 400, ERR_INVALID, "invalid_value", path, "%s must be %s; got %s",
		               path, s->format_desc,
		               s->secret ? "another value" : err_quote(q, sizeof(q), str, len));
	return 0;
}

static int
check_object(const struct schema *s, const json_t *v, char *path, size_t n, struct err *e)
{
	const struct prop *p;
	const char *key;
	json_t *child;
	char list[512], q[96], loc[ERR_PARAM_MAX];
	size_t old;

	if (!s->open) {
		json_object_foreach((json_t *)(uintptr_t)v, key, child)
		{
			for (p = s->props; p->name; p++)
				if (strcmp(p->name, key) == 0)
					break;
			if (p->name == NULL) {
				snprintf(loc, sizeof(loc), "%s", where(path));
				join_props(list, sizeof(list), s->props);
				/* Quoted with escapes in the message; in param
				 * only when it is printable. */
				err_quote(q, sizeof(q), key, strlen(key));
				jsondoc_path_push_key(path, n, key);
				return err_set(e, 400, ERR_INVALID, "unknown_parameter", path,
				               "unknown field %s in %s; allowed fields are %s", q,
				               loc, list);
			}
		}
	}
	for (p = s->props; p->name; p++) {
		child = json_object_get(v, p->name);
		if (child == NULL || (json_is_null(child) && !p->required && s->null_optional)) {
			if (!p->required)
				continue;
			old = jsondoc_path_push_key(path, n, p->name);
			err_set(e, 400, ERR_INVALID, "missing_required_parameter", path,
			        "%s is required", path);
			path[old] = '\0';
			return -1;
		}
		old = jsondoc_path_push_key(path, n, p->name);
		if (check(p->s, child, path, n, e) < 0)
			return -1;
		path[old] = '\0';
	}
	return 0;
}

static int
check_oneof(const struct schema *s, const json_t *v, char *path, size_t n, struct err *e)
{
	const struct variant *var;
	const char *tags[8];
	const json_t *tag;
	char list[256], q[96];
	size_t i;

	tag = json_object_get(v, s->disc);
	if (json_is_string(tag))
		for (var = s->variants; var->tag; var++)
			if (strcmp(var->tag, json_string_value(tag)) == 0)
				return check(var->s, v, path, n, e);

	/* Only an error needs the list of tags. */
	for (i = 0; i < 7 && s->variants[i].tag; i++)
		tags[i] = s->variants[i].tag;
	tags[i] = NULL;
	join_quoted(list, sizeof(list), tags);
	jsondoc_path_push_key(path, n, s->disc);
	if (tag == NULL) {
		err_set(e, 400, ERR_INVALID, "missing_required_parameter", path,
		        "%s is required; one of %s", path, list);
		return -1;
	}
	if (!json_is_string(tag)) {
		err_set(e, 400, ERR_INVALID, "invalid_type", path,
		        "%s must be a string, one of %s; got %s", path, list, type_name(tag));
		return -1;
	}
	err_set(e, 400, ERR_INVALID, "invalid_value", path, "%s must be one of %s; got %s", path,
	        list, err_quote(q, sizeof(q), json_string_value(tag), json_string_length(tag)));
	return -1;
}

static int
check(const struct schema *s, const json_t *v, char *path, size_t n, struct err *e)
{
	const struct schema *alt;
	char kinds[64];
	size_t i, old;

	if (json_is_null(v) && s->nullable)
		return 0;
	if (s->kind == K_EITHER) {
		alt = either_pick(s, v);
		if (alt == NULL)
			return err_set(e, 400, ERR_INVALID, "invalid_type", path,
			               "%s must be %s; got %s", where(path),
			               either_names(s, kinds, sizeof(kinds)), type_name(v));
		return check(alt, v, path, n, e);
	}
	if (!is_kind(s->kind, v))
		return err_set(e, 400, ERR_INVALID, "invalid_type", path, "%s must be %s; got %s",
		               where(path), kind_name(s->kind), type_name(v));

	switch (s->kind) {
	case K_OBJECT:
		return check_object(s, v, path, n, e);
	case K_ONEOF:
		return check_oneof(s, v, path, n, e);
	case K_ARRAY:
		if (json_array_size(v) < s->min_items)
			return err_set(e, 400, ERR_INVALID, "array_too_short", path,
			               "%s must have at least %zu item%s", path, s->min_items,
			               s->min_items == 1 ? "" : "s");
		/* Counted before any item is looked at. */
		if (s->max_items && json_array_size(v) > s->max_items)
			return err_set(e, 400, ERR_INVALID, "array_too_long", path,
			               "%s must have at most %zu items; got %zu", path,
			               s->max_items, json_array_size(v));
		for (i = 0; i < json_array_size(v); i++) {
			old = jsondoc_path_push_index(path, n, i);
			if (check(s->items, json_array_get(v, i), path, n, e) < 0)
				return -1;
			path[old] = '\0';
		}
		return 0;
	case K_STRING:
		return check_string(s, v, path, e);
	case K_INTEGER:
		if (s->has_min && json_integer_value(v) < s->min)
			return err_set(e, 400, ERR_INVALID, "integer_too_small", path,
			               "%s must be at least %lld; got %lld", path, s->min,
			               (long long)json_integer_value(v));
		return 0;
	case K_BOOLEAN:
	default:
		return 0;
	}
}

int
schema_check(const struct schema *s, const json_t *v, struct err *e)
{
	return schema_check_at(s, v, "", e);
}

int
schema_check_at(const struct schema *s, const json_t *v, const char *at, struct err *e)
{
	char path[ERR_PARAM_MAX];

	snprintf(path, sizeof(path), "%s", at);
	return check(s, v, path, sizeof(path), e);
}
