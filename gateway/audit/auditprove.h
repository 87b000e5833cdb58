/*
 * auditprove: what an auditor can be handed, from the log files alone.
 *
 *   gateway audit-checkpoint [--config FILE | --public-key PUB] AUDITFILE...
 *       prints the latest checkpoint, the signed note's exact bytes
 *   gateway audit-prove [--config FILE | --public-key PUB] AUDITFILE... REQUEST_ID
 *       prints {"leaf_index", "tree_size", "inclusion": [base64...]}: the
 *       request's record is in the tree of the latest checkpoint
 *   gateway audit-prove [--config FILE | --public-key PUB] --consistency OLD_SIZE
 *                       AUDITFILE...
 *       prints {"old_size", "tree_size", "consistency": [base64...]}: the
 *       tree of OLD_SIZE records is a prefix of the latest checkpoint's
 *
 * AUDITFILE... is a log or a rotated series, oldest first; leaf indexes
 * count across the series. Every checkpoint is checked against the tree on
 * the way (and, with a key, its signature), so a proof is only ever made
 * against a checkpoint the files agree with. Exit 0, 1 when the files do
 * not check out or hold no such record, 2 for usage.
 */
#ifndef GW_AUDITPROVE_H
#define GW_AUDITPROVE_H

#include "audit/auditverify.h"

int auditprove_checkpoint_main(int argc, char **argv, auditverify_config_fn load_config);
int auditprove_main(int argc, char **argv, auditverify_config_fn load_config);

#endif
