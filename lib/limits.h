/* Every limit notebookd enforces, in one place, each with what it protects.
 * Hostile or broken input hits one of these and gets a clear error instead of
 * exhausting the daemon. Change a value here, and the tests that pin it. */
#pragma once

/* ---- manifests ---- */
/* A manifest is a few hundred bytes; 1 MiB bounds the memory one file can take. */
#define MANIFEST_MAX_FILE_SIZE (1024 * 1024)
/* Documents ("---" separated) in one file: bounds work per file. */
#define MANIFEST_MAX_DOCUMENTS 256
/* All the manifest files one scan reads, together (files over MANIFEST_MAX_FILE_SIZE
 * count nothing: they are refused unread). A real tree is a few MiB at most (10,000
 * manifests of a few hundred bytes); 64 MiB bounds what a scan reads, and so its time
 * and memory, whatever the tree. Past it, files are left out in walk order. */
#define MANIFEST_MAX_TOTAL_SIZE (64 * 1024 * 1024)
/* YAML nodes (scalars, lists, mappings; keys included) in one document: a manifest has
 * about 30, the largest valid one (MANIFEST_MAX_ANNOTATIONS annotations) under 200.
 * Bounds the tree one document makes (~150 bytes a node), whatever the bytes: 64 KiB of
 * "[1,1,1,...]" would be 32,000 nodes. Comments cost nothing and do not count. */
#define MANIFEST_MAX_DOCUMENT_NODES 4096
/* Entries in spec.annotations: a free-form map the API forwards; a real one has a few. */
#define MANIFEST_MAX_ANNOTATIONS 64
/* Errors reported for one file: past this many the rest of the file is not checked. A
 * broken file's first errors say what is wrong; 200,000 of them (one duplicate key per
 * line) would flood the journal and hold memory. */
#define MANIFEST_MAX_ERRORS_PER_FILE 100
/* Diagnostics one scan keeps in full: past them, in walk order, a file keeps its first one
 * and a count. 10,000 files of 100 errors each (a 5 MiB tree) would otherwise hold a
 * million of them, ~200 MiB, and as many journal keys. */
#define MANIFEST_MAX_DIAGNOSTICS 10000
/* Files under the manifests tree: bounds a scan of a wrong directory (say, /). */
#define MANIFEST_MAX_FILES 10000
/* Directory depth under the manifests root: bounds recursion. */
#define MANIFEST_MAX_DIR_DEPTH 16
/* Nesting of YAML collections: the deepest valid manifest is 4 (spec.storage.location). */
#define YAML_MAX_DEPTH 8
/* One scalar: the longest valid field is a 512-character description (<= 2 KiB UTF-8). */
#define YAML_MAX_SCALAR_LENGTH 4096
/* Keys in one mapping / items in one sequence: bounds a document's node count. */
#define YAML_MAX_COLLECTION_ITEMS 1024

/* ---- the config file (lib/config.c) ---- */
/* A config is a few hundred bytes: 64 KiB bounds what a wrong -c path can make us read. */
#define CONFIG_MAX_FILE_SIZE (64 * 1024)
/* resync_interval: under 10 s would poll the API in a hot loop; over 7 days is a typo. */
#define CONFIG_MIN_RESYNC_INTERVAL_MS (10 * 1000)
#define CONFIG_MAX_RESYNC_INTERVAL_MS (7 * 24 * 3600 * 1000LL)
/* request_timeout / connect_timeout: 1 s .. 1 h; outside that a request never succeeds
 * or a dead server holds a concurrency slot for too long. */
#define CONFIG_MIN_TIMEOUT_MS 1000
/* auth_retry_interval: under 10 s a wrong key would be locked (5 bad signatures in a row
 * lock it for 5 minutes) in under a minute; over a day nobody waits for it. */
#define CONFIG_MIN_AUTH_RETRY_INTERVAL_MS (10 * 1000)
#define CONFIG_MAX_AUTH_RETRY_INTERVAL_MS (24 * 3600 * 1000LL)
#define CONFIG_MAX_TIMEOUT_MS (3600 * 1000)
/* state_retention: how long the state database keeps resolved create intents, and the
 * records of names gone from the manifests whose instances are gone too. 1 s lets a
 * test see pruning; ten years is "keep everything" without overflowing a timestamp. */
#define CONFIG_MIN_STATE_RETENTION_MS 1000
#define CONFIG_MAX_STATE_RETENTION_MS (3650 * 24 * 3600 * 1000LL)
/* prune_grace: at least a minute (a checkout is never that slow to finish), at most a
 * year; prune_max_per_pass: a fleet's worth at most */
#define CONFIG_MIN_PRUNE_GRACE_MS (60 * 1000)
#define CONFIG_MAX_PRUNE_GRACE_MS (365 * 24 * 3600 * 1000LL)
#define CONFIG_MAX_PRUNE_PER_PASS 100000
/* tenants: a host's worth of teams; max_instances up to a fleet */
#define CONFIG_MAX_TENANTS 256
#define CONFIG_MAX_TENANT_INSTANCES 100000
/* profiles: / flavors: patterns. An operator's allow-list is a handful of globs; 256 of
 * 256 bytes each bound what every manifest value is matched against. */
#define CONFIG_MAX_PATTERNS 256
#define CONFIG_MAX_PATTERN_LENGTH 256

/* ---- the create call's rules (from the ModelArts DevEnviron API reference) ---- */
#define NAME_MAX_LENGTH 64
#define DESCRIPTION_MAX_CHARS 512
/* profile_id and flavor are open sets; the longest known name is 32 characters. */
#define PROFILE_FLAVOR_MAX_CHARS 128
#define EVS_VOLUME_MIN_GB 5
#define EVS_VOLUME_MAX_GB 4096
#define EVS_VOLUME_DEFAULT_GB 5

/* ---- HTTP client and ModelArts API (lib/http.c, lib/api.c) ---- */
/* Response body cap: a list page of 100 instances is ~100 KiB; 8 MiB bounds what a
 * broken or hostile server can make the daemon buffer per transfer. */
#define HTTP_MAX_RESPONSE_SIZE (8 * 1024 * 1024)
/* One kept response header value (X-Request-Id, Retry-After, X-Subject-Token ~ 10 KiB):
 * longer ones are ignored rather than buffered. */
#define HTTP_MAX_HEADER_VALUE 16384
/* Origins remembered as speaking HTTP/2 (lib/http.c): the API's and IAM's, with room. */
#define HTTP_MAX_H2_ORIGINS 8
/* List page size: few pages for big accounts, small enough bodies per page. */
#define API_LIST_PAGE_SIZE 100
/* Instances one listing may gather: bounds memory and the loop when a server keeps
 * returning full pages (an account holds at most a few hundred notebooks). */
#define API_LIST_MAX_INSTANCES 100000
/* Retry-After honoured at most this long: a bogus huge value must not stall forever. */
#define API_MAX_RETRY_AFTER_MS (10 * 60 * 1000)
/* 429 without Retry-After: the contract advises waiting 2-5 s; we draw uniformly in
 * that range so many clients do not come back in lockstep, and double it for every
 * further 429 in a row: gateways count per-minute quotas ("limit:5,time:1 minute"), and
 * a fixed short wait would spend the next minute's quota on refusals. */
#define API_DEFAULT_RETRY_AFTER_MIN_MS 2000
#define API_DEFAULT_RETRY_AFTER_MAX_MS 5000
/* The doubling stops here: past a per-minute window, longer waits only add latency. */
#define API_THROTTLE_MAX_MS (4 * 60 * 1000)
/* Errors that name their own wait: 6355 "resources initialising, wait a minute", 6333
 * "being restored, wait several minutes". A sooner retry would only get the same answer. */
#define API_RETRY_6355_MS (60 * 1000)
#define API_RETRY_6333_MS (5 * 60 * 1000)
/* The API gateway refuses a signature whose X-Sdk-Date is more than 15 minutes off its
 * own clock. An authentication failure while the server's Date header is this far from
 * ours is named as a clock problem: the credentials are then not the thing to fix. The
 * margin below 15 minutes covers Date's one-second resolution and the request's transit. */
#define API_CLOCK_SKEW_LIMIT_MS (15 * 60 * 1000)
#define API_CLOCK_SKEW_REPORT_MS (API_CLOCK_SKEW_LIMIT_MS - 60 * 1000)
/* Renew an IAM token this long before its expires_at (tokens live 24 h). */
#define API_TOKEN_RENEW_BEFORE_MS (60 * 60 * 1000)
/* After a failed token request, wait this long before asking IAM again (calls meanwhile
 * fail fast): a broken IAM must not be hammered by every queued call. */
#define API_TOKEN_RETRY_MS (10 * 1000)
/* ECS metadata credentials (lib/metadata.h). The service issues new keys 10 minutes
 * before the old ones expire (both work meanwhile): renew then, or a third of the keys'
 * life before expiry when they live shorter (a test's rotation). */
#define METADATA_RENEW_BEFORE_MS (10 * 60 * 1000)
/* A renewal that brought back the same keys (the new ones are not issued yet) asks again
 * this soon, or at a quarter of the time left, whichever is sooner. */
#define METADATA_SAME_KEYS_RETRY_MS (30 * 1000)
/* Keys are not used this close to their expiry (a minute, or a tenth of their life): a
 * request must not arrive signed with a key that expired on the way. */
#define METADATA_EXPIRY_MARGIN_MS (60 * 1000)
/* Failed fetches back off from 1 s, doubling, up to a minute (jittered by up to +25%):
 * the service is local and usually back soon, but a loop must not hammer it. */
#define METADATA_RETRY_MIN_MS 1000
#define METADATA_RETRY_MAX_MS (60 * 1000)
/* The session token's life we ask for (X-Metadata-Token-Ttl-Seconds), as the SDKs do:
 * 6 h, the most the service grants; it is fetched again before it runs out. */
#define METADATA_SESSION_TTL_S (6 * 60 * 60)

/* ---- state store ---- */
/* How long a writer waits for another writer's lock (two daemons on one state dir,
 * or a checkpoint) before failing with -EBUSY; readers in WAL mode never wait. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* ---- signing and credentials (lib/sign.c, lib/credentials.c) ---- */
/* Names in a received SignedHeaders list: a real client signs 4 or 5; the cap bounds the
 * verifier's lookups per request when the emulator faces a hostile or broken client. */
#define SIGN_MAX_HEADERS 64
/* One credential (file or environment value). An AK is 20 bytes, an SK 40, an IAM token
 * ~10 KiB (PKI tokens are the big ones), a security token a few KiB: 64 KiB refuses a
 * wrong file (a log, an image) before it is read into memory meant for secrets. */
#define CREDENTIAL_MAX_SIZE (64 * 1024)

/* ---- the reconcile engine (daemon/engine.c) ---- */
/* Per-instance create retries: exponential from BASE, capped, half-jittered, so a
 * flapping API is not hammered and many instances do not retry in lockstep. */
#define ENGINE_RETRY_BASE_MS 1000
/* Creates handed to the API client at most, the rest waiting in the engine with their
 * intents durable: 10,000 creates handed over at once are 10,000 request bodies built
 * only to wait (6-7 MiB at 10k). Twice the highest concurrency (256): the client never
 * runs dry. */
#define ENGINE_CREATE_WINDOW 512
#define ENGINE_RETRY_MAX_MS (5 * 60 * 1000)
/* A failed listing (the pass cannot plan without it): same shape, shorter cap. */
#define ENGINE_LIST_RETRY_MAX_MS (60 * 1000)
/* The account is frozen (ModelArts.6326, arrears): creates wait this long before one more
 * try. Paying takes a human; asking every few seconds would only fill the journal. */
#define ENGINE_FROZEN_RETRY_MS (10 * 60 * 1000)
/* Following an instance on its way to RUNNING: poll from BASE, doubling to MAX. */
#define ENGINE_POLL_BASE_MS 500
/* start/stop calls one op sends before it gives the name back to the next pass: a
 * bound on a tug of war with someone who keeps changing the instance back */
#define ENGINE_STATE_ACTION_TRIES 3
/* names a held prune lists in its journal entry (the rest: `notebookd plan`) */
#define ENGINE_PRUNE_NAMES_SHOWN 10
#define ENGINE_POLL_MAX_MS (30 * 1000)

/* ---- the manifests watcher (daemon/watch.c) ---- */
/* inotify watches one watcher holds (a directory each, plus the few guarding the path
 * itself): bounds kernel memory and the per-user fs.inotify.max_user_watches share (8192
 * on small hosts) a wrong manifests path (say, /) could take. Past it, the directories
 * left out are reported via watch_n_errors() and only the periodic resync sees them. */
#define WATCH_MAX_WATCHES 4096

/* ---- metrics (lib/metrics.c, daemon/metrics-writer.c) ---- */
/* Series one process keeps at most. The label values are bounded sets (calls, results,
 * statuses, tenants) except the API's error codes, which a broken or hostile API could
 * vary without end: past this, a new series of a family with a "code" label is refused
 * and counted, so the file and the memory stay bounded (a real host has a few hundred).
 * The other families, bounded by the config, are always made. */
#define METRICS_MAX_SERIES 4096
/* The metrics file is rewritten at most once per this interval: a burst of 1,000
 * outcomes is a handful of writes, and a lone outcome is in the file within it. */
#define METRICS_WRITE_INTERVAL_MS 250
