/*
 * The gateway's command line: serve, check a configuration, or say what
 * it is.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/config.h"
#include "audit/auditprove.h"
#include "audit/auditverify.h"
#include "lib/err.h"
#include "eval.h"
#include "policytest.h"
#include "policy/keys.h"
#include "lib/secmem.h"
#include "server.h"

static const char usage[] = "usage: gateway --config FILE [--check [--online]]\n"
                            "       gateway hash-key < keyfile\n"
                            "       gateway eval --config FILE [--tenant NAME] [--operation ID] "
                            "< body.json\n"
                            "       gateway policy test [--threshold PERCENT] [--verbose] "
                            "CASES.json...\n"
                            "       gateway audit-verify --public-key PUB [--state FILE] "
                            "AUDITFILE...\n"
                            "       gateway audit-verify --config FILE AUDITFILE...\n"
                            "       gateway audit-checkpoint --config FILE AUDITFILE...\n"
                            "       gateway audit-prove --config FILE AUDITFILE... REQUEST_ID\n"
                            "       gateway audit-prove --config FILE --consistency OLD_SIZE "
                            "AUDITFILE...\n"
                            "       gateway --version | --help\n";

static const char help[] =
        "A policy-enforcing gateway for the OpenAI API.\n"
        "\n"
        "  --config FILE  the gateway's JSON configuration (it names the policy file)\n"
        "  --check        run every check the start would (the config, its policy,\n"
        "                 files and keys readable, folders writable), print\n"
        "                 \"configuration OK\" or every problem, and exit\n"
        "  --online       with --check: also that the redis store answers and\n"
        "                 auth.jwt.jwks_url serves a usable key set\n"
        "  --version      print the version and exit\n"
        "  --help         print this help and exit\n"
        "\n"
        "Exit status: 0 on success, 1 when the configuration is invalid or the\n"
        "gateway cannot start, 2 for a usage error. eval: 0 allow, 1 deny or\n"
        "invalid, 2 no decision (usage, unknown tenant, bad config), 3 shadow_deny.\n";

static void
print_errors(const struct errlist *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->msg[i]);
	if (errs->dropped)
		fprintf(stderr, "(%zu more errors not shown)\n", errs->dropped);
}

static void
release_config(void *arg)
{
	config_free(arg);
}

/* audit-verify --config: the audit keys the config names. */
static int
audit_keys(const char *path, struct auditverify_keys *keys, struct errlist *errs)
{
	struct config *cfg = config_load(path, errs);

	if (cfg == NULL)
		return -1;
	keys->key = (const unsigned char *)cfg->audit_key;
	keys->keylen = cfg->audit_key_len;
	keys->signing_key_file = cfg->audit_signing_key_file;
	keys->release = release_config;
	keys->arg = cfg;
	return 0;
}

static int
audit_verify_main(int argc, char **argv)
{
	return auditverify_main(argc, argv, audit_keys);
}

static int
audit_checkpoint_main(int argc, char **argv)
{
	return auditprove_checkpoint_main(argc, argv, audit_keys);
}

static int
audit_prove_main(int argc, char **argv)
{
	return auditprove_main(argc, argv, audit_keys);
}

/* Commands other than serving: the first argument names them, and each
 * takes the rest of the command line. */
static const struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
} subcommands[] = {
        {"hash-key", keys_main},
        {"eval", eval_main},
        {"policy", policytest_main},
        {"audit-verify", audit_verify_main},
        {"audit-checkpoint", audit_checkpoint_main},
        {"audit-prove", audit_prove_main},
        {NULL, NULL},
};

static int serve_main(int argc, char **argv);

int
main(int argc, char **argv)
{
	const struct subcommand *sc;
	int rc;

	secmem_harden_process();
	secmem_init();
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, secmem_alloc, secmem_free, secmem_realloc,
	                         secmem_strdup, secmem_calloc) != CURLE_OK) {
		fprintf(stderr, "gateway: cannot initialise libcurl\n");
		return 1;
	}
	for (sc = subcommands; argc > 1 && sc->name; sc++)
		if (strcmp(argv[1], sc->name) == 0)
			break;
	if (argc > 1 && sc->name)
		rc = sc->run(argc - 1, argv + 1);
	else
		rc = serve_main(argc, argv);
	curl_global_cleanup();
	return rc;
}

static int
serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
	        {"online", no_argument, NULL, 'o'},       {"version", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	static struct errlist errs;
	const char *config = NULL;
	struct server *s;
	int opt, check = 0, online = 0, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'o':
			online = 1;
			break;
		case 'v':
			printf("gateway %s\n", GW_VERSION);
			return 0;
		case 'h':
			fputs(usage, stdout);
			fputs(help, stdout);
			return 0;
		default:
			fprintf(stderr, "gateway: unknown or incomplete option '%s'\n%s",
			        argv[optind - 1], usage);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gateway: unexpected argument '%s'\n%s", argv[optind], usage);
		return 2;
	}
	if (config == NULL) {
		fprintf(stderr, "gateway: --config FILE is required\n%s", usage);
		return 2;
	}
	if (online && !check) {
		fprintf(stderr, "gateway: --online goes with --check\n%s", usage);
		return 2;
	}

	if (check) {
		rc = server_check(config, online, &errs);
		print_errors(&errs);
		if (rc == 0)
			printf("configuration OK\n");
		return rc == 0 ? 0 : 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit makes a write fail (and the audit log say so)
	 * rather than kill the process. */
	signal(SIGXFSZ, SIG_IGN);
	s = server_new(config, &errs);
	if (s == NULL) {
		print_errors(&errs);
		return 1;
	}
	rc = server_run(s);
	server_free(s);
	return rc;
}
