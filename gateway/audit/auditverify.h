/*
 * auditverify: `gateway audit-verify`, the auditor's side of the chain.
 *
 *   gateway audit-verify --config FILE AUDITFILE...
 *   gateway audit-verify [--hmac-key-env VAR | --hmac-key-file F]
 *                        [--public-key F] AUDITFILE...
 *
 * Reads a log, or a rotated series in order, and reports the first line
 * that was altered, removed, inserted or reordered, or a torn last line,
 * by line number and seq (exit 1); or "audit OK: N records, M checkpoints"
 * (exit 0). With only a public key, lines are proven by the signed
 * checkpoints and the prev links; lines after the last checkpoint by their
 * links only.
 */
#ifndef GW_AUDITVERIFY_H
#define GW_AUDITVERIFY_H

int auditverify_main(int argc, char **argv);

#endif
