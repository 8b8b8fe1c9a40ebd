/* The MESSAGE_ID of every kind of journal entry notebookd writes. Each ID is a stable
 * 128-bit random value (systemd-id128 new): never change or reuse one, since operators
 * filter on them (journalctl MESSAGE_ID=...) and units/notebookd.catalog explains each
 * with `journalctl -x`. Adding an event: a new ID here AND a catalog entry; the test
 * tests/integration/t-unit.sh fails when either side lacks the other.
 *
 * The values are string literals, ready for log_fields(priority, MESSAGE_X, ...).
 * "needs:" names the fields the catalog text shows (@FIELD@): journalctl -x prints
 * the bare field name where an entry lacks one, so always pass them. */
#pragma once

/* Daemon lifecycle. */
#define MESSAGE_STARTED          "0b0b4c673a144b8681b50709e48cbbb6" /* ready, READY=1 sent */
#define MESSAGE_STOPPING         "2ec5b59bcc4541a0a5bcf5908e8e8baf" /* SIGTERM/SIGINT received */
#define MESSAGE_RELOAD           "4ddb30a08310471a8ed98dac7833ddee" /* SIGHUP: config and tree re-read */
#define MESSAGE_CONFIG_INVALID   "7aef728d4982422e860fbabbe87d2539" /* config/credentials unusable; CONFIG_FILE/LINE/COLUMN when a file */
#define MESSAGE_STATE_ERROR      "b102755dd73b4d2697f79b0c696299be" /* state database failure */

/* Reconcile passes and manifests. */
#define MESSAGE_PASS_STARTED     "96767386611f4352a8e7c1ee8a2b7ba0"
#define MESSAGE_PASS_FINISHED    "df2dbbc7bb794b6e97a4c17c814011dd" /* with counts */
#define MESSAGE_MANIFEST_INVALID "473396f3a14245ed83215c235a154517" /* needs: CONFIG_FILE, CONFIG_LINE, CONFIG_COLUMN */

/* Creating instances. */
#define MESSAGE_CREATE_SENT      "ce50233663f14809825d4713d01daa25" /* needs: NOTEBOOK */
#define MESSAGE_CREATE_ACCEPTED  "22d9a72b4890455691dcdcd84bf08b8c" /* needs: NOTEBOOK, INSTANCE_ID */
#define MESSAGE_CREATE_FAILED    "2c2602c16c724704ab86143281db5dff" /* permanent; needs: NOTEBOOK, HTTP_STATUS, API_ERROR_CODE */
#define MESSAGE_CREATE_RETRY     "75babf50cc904408b1795d4299b62ebe" /* transient; needs: NOTEBOOK; ATTEMPT, RETRY_IN_MS */
#define MESSAGE_ADOPTED          "c01e2e96fb2f4768b3b7df96f151ef10" /* needs: NOTEBOOK, INSTANCE_ID */

/* What the remote side and the records say. */
#define MESSAGE_STATUS_CHANGED   "0aa5b666cb994bb6a887b4288b621aca" /* needs: NOTEBOOK, INSTANCE_ID, STATUS */
#define MESSAGE_INSTANCE_FAILED  "63485cbad3ce4670b6cdf35949572d7c" /* failed status; needs: NOTEBOOK, INSTANCE_ID, STATUS */
#define MESSAGE_DRIFT            "8d103e23bb8546a99662bd441b1ea75f" /* needs: NOTEBOOK */
#define MESSAGE_GONE             "1410e3e87149413ab62877ff1002bdbf" /* no longer desired; needs: NOTEBOOK, INSTANCE_ID */
#define MESSAGE_INSTANCE_MISSING "46683c2c5c94409586bac33f36b972ee" /* deleted behind our back; needs: NOTEBOOK, INSTANCE_ID */

/* The lifecycle (issue: state: and prune). */
#define MESSAGE_STATE_ACTION     "376ca9f1517e43eba53b47ee35d76f10" /* start/stop sent for state:; needs: NOTEBOOK,
                                                                     INSTANCE_ID, ACTION, STATUS, DESIRED_STATE */
#define MESSAGE_ACTION_FAILED    "1d5bdb0cec254c95b72adc03b9231a15" /* a start, stop or delete refused; needs: NOTEBOOK,
                                                                     INSTANCE_ID, ACTION, API_ERROR_CODE */
#define MESSAGE_PRUNE_DELETING   "5c9ed881123541a987d6cb3ad51684e8" /* prune: deleting; needs: NOTEBOOK, INSTANCE_ID,
                                                                     STATUS, UNDESIRED_SINCE */
#define MESSAGE_PRUNE_DELETED    "d12deaad2dde4fb3b7e6076f9b69d8c8" /* prune: gone from the cloud; needs: NOTEBOOK,
                                                                     INSTANCE_ID */
#define MESSAGE_PRUNE_HELD       "498cd7b73dd2473e98d2cf0874e0c85b" /* prune refused a whole pass's deletions (cap,
                                                                     tree); PRUNE_DUE, PRUNE_MAX, PRUNE_REASON */

/* Talking to the API. */
#define MESSAGE_AUTH_FAILED      "c4b4fc991bdc494b9d80cfbbabb4ad53" /* 401/403; needs: HTTP_STATUS, API_ERROR_CODE */
#define MESSAGE_THROTTLED        "03fd2eed8b3342bea9b262ac05f45fe5" /* 429; RETRY_IN_MS */
#define MESSAGE_FORBIDDEN        "6f914a8031024ba8bb964642bee0aee1" /* 403 0108/0112: an IAM policy denies a
                                                                     list or get; HTTP_STATUS, API_ERROR_CODE */
#define MESSAGE_ACCOUNT_FROZEN   "77fbcd41b2ce4e4d930b5111cabd623e" /* 6326: creates paused; RETRY_IN_MS */
#define MESSAGE_NAME_CONFLICT    "4e487f7c9afa45968bcffb0e526278b6" /* 6301 for a name no listing shows;
                                                                     needs: NOTEBOOK, WORKSPACE_ID */

/* Metrics (metrics_file:). */
#define MESSAGE_METRICS_WRITE_FAILED "bba148d44a844ff097495712ac90ee04" /* the metrics file cannot be written
                                                                         (said once until it works again);
                                                                         METRICS_FILE */
