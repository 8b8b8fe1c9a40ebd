# notebookd: the Makefile is the quality gate.
#   make            build build/notebookd and build/modelarts-emulator
#   make test       unit, golden and integration tests (SANITIZE=1: ASan+UBSan)
#   make run        the daemon against the local emulator (see README)
#   make deps       install missing build/test dependencies (apt-get, as root)
#   make deb        the Debian package, lintian-clean, in build/deb/ (mk/deb.sh)
# The version has one home, debian/changelog (the package's version is the program's).
VERSION    := $(shell head -n 1 debian/changelog | cut -d'(' -f2 | cut -d')' -f1)
ifeq ($(VERSION),)
$(error no version: the first line of debian/changelog is not "notebookd (VERSION) ...")
endif
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
CATALOGDIR ?= /usr/lib/systemd/catalog
DESTDIR    ?=

CC ?= cc
PKGS := yaml-0.1 libcjson libcurl libsystemd sqlite3 libcrypto

ifeq ($(SANITIZE),1)
BUILD    ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD    ?= build
SANFLAGS :=
endif

WARNFLAGS := -std=gnu11 -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
             -Wpointer-arith -Wcast-qual -Wformat=2 -Wundef -Wvla -Werror
CFLAGS   ?= -O2 -g
ALL_CFLAGS  = $(WARNFLAGS) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -DNOTEBOOKD_VERSION='"$(VERSION)"' \
              -Ilib $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)
LIBS        = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

LIB_SRCS    := $(sort $(wildcard lib/*.c))
DAEMON_SRCS := $(sort $(wildcard daemon/*.c))
EMU_SRCS    := $(sort $(wildcard tests/emulator/*.c))
UNIT_SRCS   := $(sort $(wildcard tests/unit/test-*.c))

LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/%.o)
EMU_OBJS    := $(EMU_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

DEPS_STAMP := build/.deps-ok

.PHONY: all deps test unit golden integration run bench soak install clean lint fuzz
all: $(BUILD)/notebookd $(BUILD)/modelarts-emulator

# Every build needs the libraries; the stamp makes the check run once per tree.
deps: $(DEPS_STAMP)
# make deps DEB=1: also the Debian packaging tools (for make deb, which asks for them).
ifeq ($(DEB),1)
	@DEB=1 sh mk/deps.sh
endif
$(DEPS_STAMP): mk/deps.sh
	@sh mk/deps.sh
	@mkdir -p $(dir $@) && touch $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libnotebookd.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/notebookd: $(DAEMON_OBJS) $(BUILD)/libnotebookd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/modelarts-emulator: $(EMU_OBJS) $(BUILD)/libnotebookd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs libmicrohttpd 2>/dev/null)

# Test tools for tests/integration: notify-recorder stands in for systemd's
# NOTIFY_SOCKET; log-probe writes one entry through daemon/log.c; real-timers.so keeps
# libfaketime off the daemon's monotonic timers (t-fault-clock.sh); both never sanitized:
# they are preloaded into a process whose sanitizer runtime must come first.
# read-only-dir.so fails writes under a directory with EROFS (t-fault-statedir.sh).
all: $(BUILD)/notify-recorder $(BUILD)/log-probe $(BUILD)/real-timers.so $(BUILD)/read-only-dir.so
$(BUILD)/real-timers.so $(BUILD)/read-only-dir.so: $(BUILD)/%.so: tests/tools/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -fPIC -shared -D_GNU_SOURCE -o $@ $<
$(BUILD)/notify-recorder: tests/tools/notify-recorder.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<
$(BUILD)/log-probe: tests/tools/log-probe.c $(BUILD)/daemon/log.o $(BUILD)/libnotebookd.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Idaemon $(ALL_LDFLAGS) -o $@ $< $(BUILD)/daemon/log.o $(BUILD)/libnotebookd.a $(LIBS)

# Unit test suites: one cmocka binary per tests/unit/test-*.c, linked with the library.
# Boundaries that a suite mocks (HTTP, clock) live in their own .c so --wrap works.
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libnotebookd.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libnotebookd.a $(LIBS) \
	    $(shell pkg-config --cflags --libs cmocka) $(shell sed -n 's,^/\* LDFLAGS: \(.*\) \*/$$,\1,p' $<)

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do echo "== $$t"; $$t || exit 1; done

golden: $(BUILD)/notebookd
	@BUILD=$(BUILD) sh tests/golden/run.sh

integration: all
	@BUILD=$(BUILD) NB_ONLY=integration bash tests/run-all.sh

test: all $(UNIT_BINS)
	@BUILD=$(BUILD) bash tests/run-all.sh $(UNIT_BINS)

run: all
	@BUILD=$(BUILD) bash mk/run-demo.sh

bench: all
	@BUILD=$(BUILD) bash tests/bench/run.sh

# The soak: 100 cycles of 1,000 manifests added then removed against one daemon; prints
# the state database's size and the daemon's RSS at start, after cycle 10 and at the
# end, and fails if either grew (a few minutes; the suite runs 10 cycles as t-soak).
NB_SOAK_CYCLES ?= 100
soak: all
	@NB_SOAK_CYCLES=$(NB_SOAK_CYCLES) BUILD=$(BUILD) bash tests/soak/soak.sh

# Fuzzing, not part of `make test` (minutes by design): libFuzzer targets built with
# clang into build/fuzz (tests/fuzz/fuzz.mk), FUZZ_SECONDS per target, or an exec budget
# with FUZZ_RUNS=N (each target runs N executions; FUZZ_SECONDS is then ignored);
# FUZZ_TARGETS picks some of: manifest config api sign.
FUZZ_SECONDS ?= 60
fuzz: | $(DEPS_STAMP)
	@FUZZ_RUNS=$(FUZZ_RUNS) bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The system test, not part of `make test` (a few minutes; root): the Debian package (and a
# rebuilt one with a higher version, to upgrade to) installed with apt-get in a Debian 12
# rootfs (debootstrap, cached in build/system/) booted by systemd-nspawn, where systemd
# runs notebookd and two template instances; tests/system/run.sh says what is checked.
.PHONY: system-test
system-test: all
	@BUILD=$(BUILD) bash tests/system/run.sh

# What `make install` and the Debian package need: the daemon and the template unit
# generated from notebookd.service (mk/template-unit.sh says why), no emulator or tools.
.PHONY: programs
programs: $(BUILD)/notebookd $(BUILD)/units/notebookd@.service
all: $(BUILD)/units/notebookd@.service
$(BUILD)/units/notebookd@.service: units/notebookd.service mk/template-unit.sh
	@mkdir -p $(dir $@)
	sh mk/template-unit.sh $< >$@.tmp && mv $@.tmp $@

install: programs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CATALOGDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/notebookd/manifests $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/notebookd $(DESTDIR)$(BINDIR)/notebookd
	sed 's,@BINDIR@,$(BINDIR),g' units/notebookd.service > $(DESTDIR)$(UNITDIR)/notebookd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/notebookd.service
	sed 's,@BINDIR@,$(BINDIR),g' $(BUILD)/units/notebookd@.service > $(DESTDIR)$(UNITDIR)/notebookd@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/notebookd@.service
	install -m 0644 units/notebookd.catalog $(DESTDIR)$(CATALOGDIR)/notebookd.catalog
	install -m 0644 units/notebookd.8 $(DESTDIR)$(MANDIR)/man8/notebookd.8
	test -e $(DESTDIR)$(SYSCONFDIR)/notebookd/notebookd.yaml || \
	    install -m 0644 units/notebookd.yaml.example $(DESTDIR)$(SYSCONFDIR)/notebookd/notebookd.yaml

# The Debian package: dpkg-buildpackage (debian/) in a copy of the tree under build/deb/,
# then lintian, which must report no error and no warning; the .deb lands in build/deb/
# (README "Install on a host"). Its tools (debhelper, devscripts, lintian) are installed
# by `make deps DEB=1`, which this runs first.
.PHONY: deb
deb:
	@DEB=1 sh mk/deps.sh
	@NB_DEB_LINTIAN=1 sh mk/deb.sh

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(EMU_OBJS:.o=.d)
# Unit suites and test tools: rebuilt when a header (or an included .c) changes.
-include $(UNIT_BINS:=.d) $(BUILD)/notify-recorder.d $(BUILD)/log-probe.d
