# mse-c build. `make` builds build/mse, build/mse-bootstrap and build/libmse.a;
# `make check` installs dependencies, builds under ASan+UBSan (build/san) and
# with clang (build/clang), and runs every test; `make fuzz` runs the
# libFuzzer targets briefly; `make bench` runs the benchmarks; `make demo`
# runs the main job end to end in simulation.
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
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS :=
endif

PKGS := libssl libcrypto libsodium jansson libarchive libcurl libseccomp python-3.11-embed
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wvla -Wno-missing-field-initializers
OPT ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -Isrc $(PKG_CFLAGS) $(OPT) $(SANFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = -pthread $(SANFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lm $(LDLIBS)

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
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BUILD)/libmse.a $(PROGS)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libmse.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/mse: $(CLI_OBJ) $(BUILD)/libmse.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libmse.a $(LIBS)

# The enclave's binary: the shared layers and src/enclave/ only.
$(BUILD)/libmse-enclave.a: $(BOOT_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/mse-bootstrap: $(BOOT_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libmse-enclave.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(BOOT_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libmse-enclave.a $(LIBS)

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

# ---- the test suite: ASan+UBSan build, clang build, every test ----------
check: deps
	$(MAKE) --no-print-directory SAN=1 all tests tools
	$(MAKE) --no-print-directory clang-check
	$(MAKE) --no-print-directory fuzz-build
	MSE_PYTHON=$(PYTHON) scripts/run-tests.sh build/san

clang-check:
	$(MAKE) --no-print-directory CC=clang BUILD=build/clang all tests tools

# ---- libFuzzer targets (clang) ----------------------------------------
FUZZ_BUILD := build/fuzz
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_TIME ?= 20

fuzz-build:
	$(MAKE) --no-print-directory CC=clang BUILD=$(FUZZ_BUILD) SANFLAGS="$(FUZZ_FLAGS)" OPT="-O1 -g" fuzz-bins

fuzz-bins: $(FUZZ_BIN)

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libmse.a
	$(CC) -fsanitize=fuzzer,address,undefined -pthread -o $@ $< $(FUZZ_BUILD)/libmse.a $(LIBS)

fuzz: deps fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TIME)

# ---- benchmarks and the demo -------------------------------------------
bench: all
	@scripts/deps.sh --bench
	MSE_PYTHON=$(PYTHON) bench/run.sh

demo: deps all
	MSE_PYTHON=$(PYTHON) scripts/demo.sh

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(BOOT_SRC) $(COORD_SRC) $(wildcard src/*/*.h) $(UNIT_SRC) $(FUZZ_SRC) $(TOOL_SRC)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
