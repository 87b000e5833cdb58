/*
 * note: checkpoints as C2SP signed notes (c2sp.org/signed-note,
 * c2sp.org/tlog-checkpoint).
 *
 *   gateway.example/audit           the origin
 *   1234                            the tree size
 *   <base64 of the root hash>
 *                                   a blank line
 *   — gateway.example/audit <base64 of key ID || Ed25519 signature>
 *
 * The signature is over the note text (the lines before the blank one,
 * with the final newline). The key ID is the first four bytes of
 * SHA-256(key name || "\n" || 0x01 || the 32-byte public key). A verifier
 * holding only the public key checks every signature line whose name and
 * key ID are its key's, and ignores the others (a witness's cosignature).
 */
#ifndef GW_NOTE_H
#define GW_NOTE_H

#include <stddef.h>
#include <stdint.h>

#define NOTE_MAX      16384 /* a note, text and signatures */
#define NOTE_NAME_MAX 255   /* an origin or key name */

struct note_key;

/*
 * Loads an Ed25519 key from a PEM file: a private key (which signs, and
 * verifies too) or a public one. name is the key name signatures are made
 * under (NULL for a key that only verifies). NULL with *why set when the
 * file cannot be read or holds no such key.
 */
struct note_key *note_key_load(const char *path, int private_key, const char *name,
                               const char **why);
void note_key_free(struct note_key *k);

/* Whether name can be an origin or key name: 1 to NOTE_NAME_MAX printable
 * ASCII characters, no space and no '+'. */
int note_name_valid(const char *name);

/* The checkpoint text "<origin>\n<size>\n<base64 root>\n" into out (cap
 * bytes, NUL-terminated). Returns its length, or 0 when it does not fit. */
size_t note_checkpoint(char *out, size_t cap, const char *origin, uint64_t size,
                       const unsigned char root[32]);

/* Reads a checkpoint text (extension lines after the root are allowed):
 * the origin into origin (NOTE_NAME_MAX + 1 bytes), the size and the
 * root. 0, or -1 when it is not one. */
int note_checkpoint_parse(const char *text, size_t len, char *origin, uint64_t *size,
                          unsigned char root[32]);

/* The signed note of text[0..len) (which ends in a newline): the text, a
 * blank line and k's signature line, into out (cap bytes, NUL-terminated).
 * Returns its length, or 0. */
size_t note_sign(struct note_key *k, const char *text, size_t len, char *out, size_t cap);

enum note_verdict {
	NOTE_VERIFIED,      /* a signature line of k's, and every one of them, verifies */
	NOTE_NOT_SIGNED,    /* no signature line is k's */
	NOTE_BAD_SIGNATURE, /* a signature line of k's does not verify: the text changed */
	NOTE_MALFORMED,     /* not a signed note */
};

/* Checks note[0..len) against k (NULL: only its form, NOTE_NOT_SIGNED at
 * best); *text_len gets the length of its text (up to the blank line)
 * whatever the verdict, 0 when malformed. */
enum note_verdict note_verify(const struct note_key *k, const char *note, size_t len,
                              size_t *text_len);

/* Whether s[0..len) is one or more signature lines, each ending in a
 * newline (a witness's answer, to append to a note). */
int note_signature_lines(const char *s, size_t len);

#endif
