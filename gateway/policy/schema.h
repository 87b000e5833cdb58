/*
 * schema: the upstream's contract, as data.
 *
 * The request and response schemas of ../shared/spec/containers.openapi.yaml
 * (and, from openapi.yaml, the Responses tools that make containers) are
 * written out as static tables and checked by one walker, so a reader
 * can hold a table against the spec line by line. Request schemas are
 * closed (unknown fields are refused); response schemas are open, since the
 * upstream may add fields, and treat null as absent for optional fields.
 */
#ifndef GW_SCHEMA_H
#define GW_SCHEMA_H

#include <jansson.h>

#include "lib/err.h"

struct schema;

/* CreateContainerBody, plus the gateway's stricter rules noted in schema.c. */
extern const struct schema schema_create_container_body;
/* ContainerResource. */
extern const struct schema schema_container_resource;
/* ContainerListResource, ContainerFileResource, ContainerFileListResource. */
extern const struct schema schema_container_list_resource;
extern const struct schema schema_container_file_resource;
extern const struct schema schema_container_file_list_resource;
/* CreateContainerFileBody, JSON form. */
extern const struct schema schema_create_container_file_body;
/* Entries of a Responses body's tools[] (openapi.yaml) that make or use
 * containers: CodeInterpreterTool, whose container is an id or an
 * AutoCodeInterpreterToolParam, and FunctionShellToolParam, whose
 * environment is a ContainerAutoParam, LocalEnvironmentParam or
 * ContainerReferenceParam (or null). Closed, like every request schema. */
extern const struct schema schema_code_interpreter_tool;
extern const struct schema schema_shell_tool;

/*
 * Checks v against s. Returns 0, or -1 with e filled: status 400, type
 * invalid_request_error, param the JSON path of the first offending field,
 * code one of invalid_type, missing_required_parameter, unknown_parameter,
 * invalid_value, string_too_short, string_too_long, array_too_short,
 * array_too_long, integer_too_small. Messages quote offending values only
 * for fields that are not secret.
 */
int schema_check(const struct schema *s, const json_t *v, struct err *e);

/* The same for a value found at the JSON path at of a larger document
 * ("tools[1]"), so that param and messages name its fields by their whole
 * path ("tools[1].container.memory_limit"). */
int schema_check_at(const struct schema *s, const json_t *v, const char *at, struct err *e);

/* Number of Unicode code points in a valid UTF-8 string (JSON Schema's
 * notion of string length). */
size_t schema_utf8_length(const char *s, size_t len);

#endif
