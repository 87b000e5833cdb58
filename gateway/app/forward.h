/*
 * forward: the operations whose answer is relayed whole once it has been
 * checked against the spec: retrieve, delete and list of containers and
 * of their files, and a file added by file_id. Their steps:
 *
 *   admit      the tenant's request rate; the path's container is its own
 *   intent     the audit intent line
 *   forward    the request goes upstream, its answer is kept
 *   check      the answer against the spec and the path's ids
 *   answer     relay it, or withhold it
 *
 * A delete also forgets the container before answering; a file added by
 * file_id first validates its JSON body; a tenant's list reads the
 * upstream's pages and keeps the tenant's own containers.
 */
#ifndef GW_FORWARD_H
#define GW_FORWARD_H

#include "app/pipeline.h"

extern const struct step forward_steps[];
extern const struct step forward_delete_steps[];
extern const struct step forward_list_steps[];
extern const struct step forward_file_steps[];

#endif
