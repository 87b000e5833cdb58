#include "policy/tools.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "policy/schema.h"

/* The input items that carry tool definitions of their own
 * (ToolSearchOutputItemParam, AdditionalToolsItemParam). */
static const char *const tool_items[] = {"tool_search_output", "additional_tools", NULL};

static int
oom(struct tools_result *r)
{
	return err_set(&r->decision.err, 503, ERR_INTERNAL, "out_of_memory", NULL,
	               "the gateway ran out of memory applying the policy; try again");
}

static const char *list_path(char *dst, size_t n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A path of a list or a tool into dst (ERR_PARAM_MAX bytes, which the
 * deepest, "input[i].tools[j]" with indexes of 20 digits, fits). */
static const char *
list_path(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
	return dst;
}

/* "tools[j]" or "input[i].tools[j]". */
static const char *
tool_path(char *dst, size_t n, size_t item, size_t tool)
{
	if (item == TOOLS_BODY)
		return list_path(dst, n, "tools[%zu]", tool);
	return list_path(dst, n, "input[%zu].tools[%zu]", item, tool);
}

const char *
tools_param(const struct tools_container *c, char *dst, size_t n)
{
	char at[ERR_PARAM_MAX];

	return list_path(dst, n, "%s.%s", tool_path(at, sizeof(at), c->item, c->tool), c->field);
}

static int
add(struct tools_result *r, const struct tools_container *c)
{
	struct tools_container *grown;
	size_t cap;

	if (r->n == r->cap) {
		cap = r->cap ? 2 * r->cap : 8;
		grown = realloc(r->containers, cap * sizeof(*grown));
		if (grown == NULL)
			return oom(r);
		r->containers = grown;
		r->cap = cap;
	}
	r->containers[r->n++] = *c;
	return 0;
}

/* A code_interpreter tool: its container is an id or one made for it. */
static int
code_interpreter(json_t *tool, size_t item, size_t j, struct tools_result *r)
{
	json_t *container = json_object_get(tool, "container");
	struct tools_container c = {.item = item, .tool = j, .field = "container"};

	if (json_is_string(container)) {
		c.kind = TOOLS_USED;
		c.container_id = json_string_value(container);
	} else {
		c.kind = TOOLS_MADE;
		c.config = container;
		c.fields = POLICY_FIELDS_CODE_INTERPRETER;
	}
	return add(r, &c);
}

/* A shell tool: its environment makes a container, names one, or is not
 * a container at all (local, or none given). */
static int
shell(json_t *tool, size_t item, size_t j, struct tools_result *r)
{
	json_t *env = json_object_get(tool, "environment");
	const char *type = json_string_value(json_object_get(env, "type"));
	struct tools_container c = {.item = item, .tool = j};

	if (type == NULL) {
		r->unset++;
		return 0;
	}
	if (strcmp(type, "local") == 0) {
		r->local++;
		return 0;
	}
	if (strcmp(type, "container_reference") == 0) {
		c.kind = TOOLS_USED;
		c.field = "environment.container_id";
		c.container_id = json_string_value(json_object_get(env, "container_id"));
	} else {
		c.kind = TOOLS_MADE;
		c.field = "environment";
		c.config = env;
		c.fields = POLICY_FIELDS_SHELL;
	}
	return add(r, &c);
}

/* Checks the tools that make or use containers in one list (at is its
 * path) against their schemas, and notes their containers. */
static int
collect(json_t *tools, const char *at, size_t item, struct tools_result *r)
{
	char path[ERR_PARAM_MAX];
	json_t *tool;
	size_t j;

	if (tools == NULL || json_is_null(tools))
		return 0;
	if (!json_is_array(tools))
		return err_set(&r->decision.err, 400, ERR_INVALID, "invalid_type", at,
		               "%s must be an array of tools", at);
	json_array_foreach(tools, j, tool)
	{
		const char *type = json_string_value(json_object_get(tool, "type"));

		if (type == NULL)
			continue;
		if (strcmp(type, "code_interpreter") == 0) {
			if (schema_check_at(&schema_code_interpreter_tool, tool,
			                    tool_path(path, sizeof(path), item, j),
			                    &r->decision.err) < 0 ||
			    code_interpreter(tool, item, j, r) < 0)
				return -1;
		} else if (strcmp(type, "shell") == 0) {
			if (schema_check_at(&schema_shell_tool, tool,
			                    tool_path(path, sizeof(path), item, j),
			                    &r->decision.err) < 0 ||
			    shell(tool, item, j, r) < 0)
				return -1;
		}
	}
	return 0;
}

static int
carries_tools(const json_t *item)
{
	const char *type = json_string_value(json_object_get(item, "type"));
	size_t i;

	for (i = 0; type && tool_items[i]; i++)
		if (strcmp(type, tool_items[i]) == 0)
			return 1;
	return 0;
}

int
tools_apply(const struct policy *p, json_t *body, struct tools_result *r)
{
	json_t *input = json_object_get(body, "input"), *item;
	char at[ERR_PARAM_MAX];
	size_t i;

	memset(r, 0, sizeof(*r));
	/* Every tool is checked against the contract before any rule runs, so
	 * a malformed tool is a 400 wherever it is. */
	if (collect(json_object_get(body, "tools"), "tools", TOOLS_BODY, r) < 0)
		return -1;
	json_array_foreach(input, i, item)
	{
		if (carries_tools(item) &&
		    collect(json_object_get(item, "tools"),
		            list_path(at, sizeof(at), "input[%zu].tools", i), i, r) < 0)
			return -1;
	}
	if (policy_check_tool_count(p, r->n, &r->decision) < 0)
		return -1;
	for (i = 0; i < r->n; i++) {
		const struct tools_container *c = &r->containers[i];

		if (c->kind == TOOLS_MADE &&
		    policy_apply_container(p, c->config, tools_param(c, at, sizeof(at)), c->fields,
		                           &r->decision) < 0)
			return -1;
	}
	return 0;
}

void
tools_result_release(struct tools_result *r)
{
	if (r == NULL)
		return;
	free(r->containers);
	r->containers = NULL;
	r->n = r->cap = 0;
}

int
tools_client_secrets(const struct tools_result *r, char *param, size_t n)
{
	char at[ERR_PARAM_MAX];
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct tools_container *c = &r->containers[i];

		if (c->kind == TOOLS_MADE &&
		    json_object_get(json_object_get(c->config, "network_policy"),
		                    "domain_secrets") != NULL) {
			list_path(param, n, "%s.network_policy.domain_secrets",
			          tools_param(c, at, sizeof(at)));
			return 1;
		}
	}
	return 0;
}
