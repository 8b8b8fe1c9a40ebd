# tests/fuzz/fuzz.mk: libFuzzer targets, built by tests/fuzz/run.sh (make fuzz) with
#   make -f tests/fuzz/fuzz.mk
# The library sources are compiled again with clang and the fuzzer's coverage
# instrumentation into build/fuzz: the gcc-built build/libnotebookd.a has neither.
# Not part of `make test`: fuzzing takes minutes by design.
FUZZ_CC    ?= clang
FUZZ_BUILD ?= build/fuzz
PKGS       := yaml-0.1 libcjson libcurl libsystemd sqlite3 libcrypto

# -O1 -g: fast enough to fuzz, precise enough to read a stack. UBSan without recovery, so
# undefined behaviour is a crash libFuzzer keeps an input for.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -O1 -g $(FUZZ_SAN) -D_GNU_SOURCE -DNOTEBOOKD_VERSION='"fuzz"' -Ilib \
               $(shell pkg-config --cflags $(PKGS)) -MMD -MP
# The library is other people's code, mid-edit: clang's warnings there are shown, not fatal
# (gcc's -Werror build is their gate). The targets here are held to -Werror.
LIB_WARN    := -Wall -Wextra
TARGET_WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Werror
LIBS        := $(shell pkg-config --libs $(PKGS)) -lm

LIB_SRCS    := $(sort $(wildcard lib/*.c))
LIB_OBJS    := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
TARGET_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
TARGETS     := $(TARGET_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

.PHONY: all
all: $(TARGETS)

$(FUZZ_BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(LIB_WARN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libnotebookd-fuzz.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_BUILD)/libnotebookd-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(TARGET_WARN) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libnotebookd-fuzz.a $(LIBS)

-include $(LIB_OBJS:.o=.d) $(TARGETS:=.d)
