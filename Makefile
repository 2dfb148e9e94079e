# SPDX-License-Identifier: Apache-2.0
# mse-c build. `make` builds build/mse, build/mse-bootstrap and build/libmse.a;
# `make check` installs dependencies, builds under ASan+UBSan (build/san) and
# with clang (build/clang), and runs every test; `make fuzz` runs the
# libFuzzer targets briefly; `make bench` runs the benchmarks; `make demo`
# runs the main job end to end in simulation; `make install` installs under
# PREFIX (default /usr/local) and DESTDIR; `make deb` builds the Debian package.
# Each of these works on a fresh Debian machine: see "Entry points" below.
#
# Sources are found by folder (docs/architecture.md): the shared layers
# src/{common,config,net,crypto,attest}/ and the actors src/{enclave,operator,
# codeprovider,coordinator}/ make libmse.a; src/cli/*.c make `mse`; mse-bootstrap is
# src/enclave/bootstrap_main.c linked with the shared layers and src/enclave/
# only (never the operator's or the code provider's code), mse-coordinator is
# src/coordinator/coordinator_main.c with the shared layers and src/coordinator/
# only, tests/unit/test_*.c are cmocka programs, tests/tools/*.c
# are helper programs for tests, tests/fuzz/fuzz_*.c are libFuzzer targets.

CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif
PYTHON ?= /usr/bin/python3
SAN_BUILD ?= build/san
CLANG_BUILD ?= build/clang
FUZZ_BUILD ?= build/fuzz
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= $(SAN_BUILD)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS :=
endif

PKGS := libssl libcrypto libsodium jansson libarchive libcurl libseccomp libnghttp2 python-3.11-embed
PKG_CONFIG ?= pkg-config
# pkg-config is asked when a recipe first needs the flags, never when this
# file is read: `make demo` on a fresh machine reads it before deps.sh has
# installed the -dev packages (issue 13). Each answer is kept after first use.
pkg_query = $(or $(shell $(PKG_CONFIG) --$(1) $(PKGS) 2>/dev/null),$(error $(PKG_CONFIG) --$(1) \
  $(PKGS) failed: the -dev packages are missing; run 'make deps' (scripts/deps.sh) first))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_query,cflags))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $(call pkg_query,libs))$(PKG_LIBS)

# Programs that run the app (mse serve, mse-bootstrap) link Debian's non-PIC
# libpython3.11.a, as Debian links its own /usr/bin/python3: a non-PIE
# executable that exports the C API to extension modules (--export-dynamic).
# The interpreter then runs Flask 15-20 % faster than through the -fPIC
# libpython3.11.so (bench/README.md, issue 21). PY_STATIC=0 links the shared
# library (PIE); sanitizer builds do (tests/lsan.supp names libpython3.11).
ifeq ($(SAN),1)
PY_STATIC ?= 0
else
PY_STATIC ?= 1
endif
py_config = $(or $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("$(1)") or "")' \
  2>/dev/null),$(error $(PYTHON) has no sysconfig $(1)))
PY_STATIC_LIB = $(eval PY_STATIC_LIB := $(call py_config,LIBPL)/$(call py_config,LIBRARY))$(PY_STATIC_LIB)
ifeq ($(PY_STATIC),1)
APP_LDFLAGS = -no-pie -Wl,--export-dynamic
# LIBS with the static library in -lpython3.11's place, then what it needs.
APP_LIBS = $(PY_STATIC_LIB) $(filter-out -lpython3%,$(LIBS)) -lexpat -lz -ldl -lutil
else
APP_LDFLAGS =
APP_LIBS = $(LIBS)
endif

WARN := -Wall -Wextra -Werror -Wformat=2 -Wvla -Wno-missing-field-initializers
OPT ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -Isrc $(PKG_CFLAGS) $(OPT) $(SANFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = -pthread $(SANFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lwslay -lm $(LDLIBS)

SHARED_DIRS := src/common src/config src/net src/crypto src/attest
ACTOR_DIRS := src/enclave src/coordinator src/operator src/codeprovider
SHARED_SRC := $(wildcard $(SHARED_DIRS:%=%/*.c))
ENCLAVE_SRC := $(filter-out %_main.c,$(wildcard src/enclave/*.c))
COORD_LIB_SRC := $(filter-out %_main.c,$(wildcard src/coordinator/*.c))
LIB_SRC := $(filter-out %_main.c,$(SHARED_SRC) $(wildcard $(ACTOR_DIRS:%=%/*.c)))
CLI_SRC := $(wildcard src/cli/*.c)
BOOT_SRC := $(wildcard src/enclave/bootstrap_main.c)
COORD_SRC := $(wildcard src/coordinator/coordinator_main.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_HELPERS := $(filter-out tests/unit/test_%,$(wildcard tests/unit/*.c))
TOOL_SRC := $(wildcard tests/tools/*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
BOOT_LIB_OBJ := $(SHARED_SRC:%.c=$(BUILD)/obj/%.o) $(ENCLAVE_SRC:%.c=$(BUILD)/obj/%.o)
COORD_LIB_OBJ := $(SHARED_SRC:%.c=$(BUILD)/obj/%.o) $(COORD_LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPER_OBJ := $(UNIT_HELPERS:%.c=$(BUILD)/obj/%.o)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
PROGS := $(BUILD)/mse $(if $(BOOT_SRC),$(BUILD)/mse-bootstrap) $(if $(COORD_SRC),$(BUILD)/mse-coordinator)

.PHONY: all tests tools check clang-check fuzz fuzz-build bench demo deps clean format
.PHONY: man install uninstall deb deb-check fresh-check k8s-check
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BUILD)/libmse.a $(PROGS) man

# ---- entry points -------------------------------------------------------
# The targets a newcomer types first install the Debian packages they need
# (scripts/deps.sh: only dpkg-query when everything is there), then run again
# in a new make, which reads this Makefile, and so asks pkg-config, only once
# the -dev packages exist. SKIP_DEPS=1 skips deps.sh (packagers, offline).
# ENTRY_MAKEFLAGS is passed to that second make (tests/e2e/test_make_fresh.sh
# passes -n there to see every command the target would run).
ENTRY := demo check bench fuzz install deb deb-check fresh-check k8s-check
DEPS_SH ?= scripts/deps.sh
bench: DEPS_FLAGS = --bench
fuzz: DEPS_FLAGS = --fuzz
deb deb-check fresh-check: DEPS_FLAGS = --deb
k8s-check: DEPS_FLAGS = --k8s

deps:
	@$(DEPS_SH) $(DEPS_FLAGS)

ifndef SKIP_DEPS
$(ENTRY): deps
	+@$(MAKE) --no-print-directory $(ENTRY_MAKEFLAGS) SKIP_DEPS=1 $@
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libmse.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/mse: $(CLI_OBJ) $(BUILD)/libmse.a
	$(CC) $(ALL_LDFLAGS) $(APP_LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libmse.a $(APP_LIBS)

# The enclave's binary: the shared layers and src/enclave/ only.
$(BUILD)/libmse-enclave.a: $(BOOT_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/mse-bootstrap: $(BOOT_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libmse-enclave.a
	$(CC) $(ALL_LDFLAGS) $(APP_LDFLAGS) -o $@ $(BOOT_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libmse-enclave.a $(APP_LIBS)

# The coordinator's binary: the shared layers and src/coordinator/ only.
$(BUILD)/libmse-coordinator.a: $(COORD_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/mse-coordinator: $(COORD_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libmse-coordinator.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(COORD_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libmse-coordinator.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_HELPER_OBJ) $(BUILD)/libmse.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJ) $(BUILD)/libmse.a $(LIBS) -lcmocka

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(BUILD)/libmse.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libmse.a $(LIBS)

tests: $(UNIT_BIN)
tools: $(TOOL_BIN)

# What the entry targets do once deps.sh has run (see "entry points").
ifdef SKIP_DEPS
# ---- the test suite: ASan+UBSan build, clang build, every test ----------
check:
	$(DEPS_SH) --check
	$(MAKE) --no-print-directory SAN=1 BUILD=$(SAN_BUILD) all tests tools
	$(MAKE) --no-print-directory clang-check
	$(MAKE) --no-print-directory fuzz-build
	MSE_PYTHON=$(PYTHON) scripts/run-tests.sh $(SAN_BUILD)

fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TIME)

bench: all
	MSE_PYTHON=$(PYTHON) bench/run.sh

demo: all
	MSE_PYTHON=$(PYTHON) scripts/demo.sh

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(addprefix $(DESTDIR)$(MANDIR)/man,$(MAN_SECTIONS)) \
		$(DESTDIR)$(COMPDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/
	$(foreach s,$(MAN_SECTIONS),$(INSTALL) -m 0644 $(filter %.$(s),$(MAN_OUT)) $(DESTDIR)$(MANDIR)/man$(s)/;)
	$(INSTALL) -m 0644 scripts/completion.bash $(DESTDIR)$(COMPDIR)/mse
	$(INSTALL) -m 0644 README.md LICENSE $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -d $(DESTDIR)$(DOCDIR)/docs
	$(INSTALL) -m 0644 $(wildcard docs/*.md) $(DESTDIR)$(DOCDIR)/docs/

# The package is built from its own objects (Debian's hardening flags), then
# staged with PREFIX=/usr and assembled, checked by lintian, by scripts/deb.sh.
deb: export DEB_BUILD_MAINT_OPTIONS = hardening=+all
deb:
	rm -rf $(DEB_BUILD)/root
	$(MAKE) --no-print-directory BUILD=$(DEB_BUILD) PREFIX=/usr DESTDIR=$(abspath $(DEB_BUILD))/root \
		OPT="$$(dpkg-buildflags --get CFLAGS) $$(dpkg-buildflags --get CPPFLAGS)" \
		LDFLAGS="$$(dpkg-buildflags --get LDFLAGS)" install
	scripts/deb.sh $(DEB_BUILD)/root $(VERSION) $(DEB_OUT)

# Installs that package in a minimal Debian chroot and deploys an app there.
deb-check: deb
	scripts/deb-check.sh $(DEB_OUT)/mse-c_$(VERSION)_$$(dpkg --print-architecture).deb

# `make install` and `make demo`, the first time, in a minimal Debian chroot.
fresh-check:
	scripts/fresh-check.sh

# The images (reproducible) and the manifests run by podman kube play.
k8s-check: all
	scripts/k8s-check.sh $(BUILD)
endif

clang-check:
	$(MAKE) --no-print-directory CC=clang BUILD=$(CLANG_BUILD) all tests tools

# ---- libFuzzer targets (clang) ----------------------------------------
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_TIME ?= 20

fuzz-build:
	$(MAKE) --no-print-directory CC=clang BUILD=$(FUZZ_BUILD) SANFLAGS="$(FUZZ_FLAGS)" OPT="-O1 -g" fuzz-bins

fuzz-bins: $(FUZZ_BIN)

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libmse.a
	$(CC) -fsanitize=fuzzer,address,undefined -pthread -o $@ $< $(FUZZ_BUILD)/libmse.a $(LIBS)

# ---- man pages (scdoc): docs/man/NAME.S.scd -> $(BUILD)/man/manS/NAME.S ----
# A new command gets docs/man/mse-CMD.1.scd; tests/e2e/test_man.py fails
# until it exists and lists every option of `mse CMD --help`.
SCDOC ?= scdoc
# The pages' date is the last commit's, so two builds of one tree are identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
ifneq ($(SOURCE_DATE_EPOCH),)
export SOURCE_DATE_EPOCH
endif
MAN_SRC := $(wildcard docs/man/*.scd)
MAN_SECTIONS := 1 5 8
MAN_OUT := $(foreach f,$(MAN_SRC:docs/man/%.scd=%),$(BUILD)/man/man$(subst .,,$(suffix $(f)))/$(f))

man: $(MAN_OUT)

$(foreach s,$(MAN_SECTIONS),$(eval $$(BUILD)/man/man$(s)/%.$(s): docs/man/%.$(s).scd ; $$(scdoc_cmd)))
define scdoc_cmd
@mkdir -p $(dir $@)
$(SCDOC) <$< >$@.tmp || { rm -f $@.tmp; echo "$<: scdoc failed (is it installed? make deps)" >&2; exit 1; }
@mv $@.tmp $@
endef

# ---- install -------------------------------------------------------------
# mse runs, and `mse verify` measures, the mse-bootstrap in the directory of
# its own executable (/proc/self/exe): both go to BINDIR, so any PREFIX and
# DESTDIR work. `mse help CMD` reads the pages in BINDIR/../share/man.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
COMPDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR ?= $(PREFIX)/share/doc/mse-c
INSTALL ?= install

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGS)))
	rm -f $(foreach f,$(MAN_OUT),$(DESTDIR)$(MANDIR)/$(notdir $(patsubst %/,%,$(dir $(f))))/$(notdir $(f)))
	rm -f $(DESTDIR)$(COMPDIR)/mse
	rm -rf $(DESTDIR)$(DOCDIR)

# ---- Debian package --------------------------------------------------------
VERSION := $(shell sed -n 's/^\#define MSE_VERSION "\(.*\)"/\1/p' src/common/version.h)
DEB_BUILD ?= build/deb
DEB_OUT ?= build

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(BOOT_SRC) $(COORD_SRC) $(wildcard src/*/*.h) $(UNIT_SRC) $(FUZZ_SRC) $(TOOL_SRC)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
