/* libFuzzer target: the API client's response parsers (lib/api.h), which read whatever a
 * server, a proxy or an attacker on the path sends back: api_parse_instance(),
 * api_parse_list_page(), api_parse_error() and api_parse_retry_after(), all on the same
 * input. Missing or odd fields must be tolerated; nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "instance.h"
#include "limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *body = (const char *) data;

        RemoteInstance inst = { 0 };
        if (api_parse_instance(body, size, &inst) == 0)
                remote_instance_done(&inst);

        /* Two pages into one list, as the client accumulates them. */
        RemoteInstanceList list = { 0 };
        int64_t total = -1;
        size_t page_items = 0;
        if (api_parse_list_page(body, size, &list, &total, &page_items) == 0) {
                /* The same page again: every id is known now, nothing may be added twice. */
                size_t n = list.n;
                if (api_parse_list_page(body, size, &list, &total, &page_items) == 0 && list.n != n)
                        abort();
                /* ids are unique, and each finds its own item */
                for (size_t i = 0; i < list.n; i++)
                        if (remote_instance_list_find_id(&list, list.items[i].id) != &list.items[i])
                                abort();
        }
        remote_instance_list_clear(&list);

        ApiError err = { 0 };
        api_parse_error(body, size, &err);
        if (err.error_code) {
                int e = 0;
                (void) api_classify(API_CALL_CREATE, 0, true, 400, err.error_code, &e);
        }
        api_error_done(&err);

        /* Retry-After is a header value: a NUL-terminated string. */
        if (size <= 256) {
                char v[257];
                memcpy(v, data, size);
                v[size] = 0;
                int64_t ms;
                if (api_parse_retry_after(v, 1700000000000LL, &ms) == 0 &&
                    (ms < 0 || ms > API_MAX_RETRY_AFTER_MS))
                        abort();  /* the header promises a clamped result */
        }
        return 0;
}
