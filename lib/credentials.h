/* Credentials for the ModelArts API: where they come from, what kind they are, and
 * keeping them out of places they must not reach.
 *
 * Sources, first match wins, one source per load (never an AK from one place and the SK
 * from another: a stale half would sign wrongly, and 5 bad signatures lock the AK):
 *   1. $CREDENTIALS_DIRECTORY/{ak,sk,security-token,token,password} (systemd
 *      LoadCredential=; the directory is private to the service, so file modes there are
 *      not checked: systemd may grant access by ACL, which shows as a group bit);
 *   2. the files the config names (ak_file, sk_file, security_token_file, token_file,
 *      password_file): a named file must exist, be a regular file owned by this user or
 *      root, and not be accessible by group or others (mode & 077 == 0);
 *   3. the environment: HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and
 *      HUAWEICLOUD_SDK_SECURITY_TOKEN (the Huawei Cloud SDKs' names; an empty variable
 *      counts as unset). There is no standard variable for a static IAM token, so none is
 *      read: a token comes from a file.
 * `credentials: metadata` in the config replaces all three: the keys come from the ECS
 * metadata service, fetched by the API client (lib/metadata.h); naming a credential file
 * beside it is an error, and $CREDENTIALS_DIRECTORY and the environment are not read.
 * HUAWEICLOUD_SDK_PROJECT_ID is read whatever the source (it is not a secret); the
 * config's project_id should win over it (the caller decides).
 *
 * Files lose one trailing newline ("\n" or "\r\n"); values are capped at
 * CREDENTIAL_MAX_SIZE. AK, SK and tokens go into HTTP headers, so they must be printable
 * ASCII without spaces; a password may be anything but NUL, CR and LF.
 *
 * Secrets (every char * below the kind) live in their own pages, excluded from core dumps
 * (MADV_DONTDUMP), not inherited by a fork (MADV_WIPEONFORK), locked out of swap when
 * RLIMIT_MEMLOCK allows, and wiped on credentials_free(). Whoever copies one (a curl header
 * list) copies it into ordinary memory: credentials_disable_core_dumps() covers that. No
 * message produced here ever contains a secret's value, only where it was looked for. */
#pragma once

#include "config.h"
#include "macro.h"

typedef enum CredentialsKind {
        CREDENTIALS_AKSK,      /* sign with SDK-HMAC-SHA256 (+ X-Security-Token if set) */
        CREDENTIALS_TOKEN,     /* a static IAM token, sent as X-Auth-Token */
        CREDENTIALS_PASSWORD,  /* IAM user/domain/password: fetch a token (the API client) */
        CREDENTIALS_METADATA,  /* `credentials: metadata`: temporary AK/SK + security token
                                * from the ECS metadata service (the API client fetches and
                                * renews them, lib/metadata.h); no secret here */
} CredentialsKind;

typedef struct Credentials {
        CredentialsKind kind;

        /* secrets (see above); NULL when not part of this kind */
        char *ak;
        char *sk;
        char *security_token;  /* AKSK: temporary credentials only */
        char *token;
        char *password;

        /* not secrets */
        char *iam_user;        /* PASSWORD: copied from the config */
        char *iam_domain;
        char *project_id;      /* HUAWEICLOUD_SDK_PROJECT_ID, or NULL */
        char *metadata_endpoint;  /* METADATA: http://169.254.169.254 or the config's */

        /* Where each value came from, for messages: "file /etc/notebookd/sk (sk_file)",
         * "credentials directory /run/credentials/notebookd.service (sk)", "environment
         * (HUAWEICLOUD_SDK_SK)". NULL when the value is NULL. source names the tier. */
        char *source;
        bool from_config_files;  /* tier 2 won: rewriting those files changes them */
        char *ak_source;
        char *sk_source;
        char *security_token_source;
        char *token_source;
        char *password_source;
        char *project_id_source;
} Credentials;

/* Load per the order above. config may be NULL (no config: tiers 1 and 3 only).
 * Errors, each with a one-line *ret_error (caller frees; naming files, variables, modes,
 * never values) when ret_error is not NULL:
 *   -ENOENT  nothing found anywhere (the message lists where it looked), a file the config
 *            names does not exist, $CREDENTIALS_DIRECTORY names nothing (-ENOTDIR: a file);
 *   -EACCES  a config-named file is accessible by group/others, owned by another user, or
 *            unreadable;
 *   -EINVAL  incomplete or ambiguous: an AK without SK (or the reverse), a security token
 *            without AK/SK, two kinds in one source, a password without iam_user/iam_domain,
 *            an empty value, forbidden bytes, a bad HUAWEICLOUD_SDK_PROJECT_ID, not a
 *            regular file;
 *   -EFBIG   a value larger than CREDENTIAL_MAX_SIZE;
 *   -ENOMEM  (no message), other negative errno from the system with a message.
 * *ret is written only on success. */
int credentials_load(const Config *config, Credentials **ret, char **ret_error);

/* Wipes and unmaps the secrets. NULL-safe, returns NULL. */
Credentials *credentials_free(Credentials *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Credentials *, credentials_free);

/* "AK/SK", "temporary AK/SK" (with a security token), "IAM token", "IAM password",
 * "ECS metadata (temporary AK/SK)". */
const char *credentials_kind_to_string(const Credentials *c);

/* One line for the journal at startup and in auth-failure messages: the kind and where it
 * came from, e.g. "AK/SK from file /etc/notebookd/ak (ak_file) and file /etc/notebookd/sk
 * (sk_file)". Never a value. Caller frees; NULL on ENOMEM. */
char *credentials_describe(const Credentials *c);

/* The protected memory the secrets above live in, for secrets fetched later (the
 * metadata service's keys): a mapping of its own, out of core dumps and swap, wiped on
 * free. NULL on ENOMEM. credentials_secret_free() is NULL-safe. */
char *credentials_secret_dup(const char *s, size_t len);
void credentials_secret_free(char *s);

/* Process-wide: no core dumps and no ptrace attach by other processes of the same user
 * (prctl PR_SET_DUMPABLE 0), so a copy of a secret in ordinary memory (a curl header, an
 * OpenSSL buffer) cannot leak through a core file either. For main to call once, before
 * credentials_load(): it is a process policy, not this library's decision. */
int credentials_disable_core_dumps(void);
