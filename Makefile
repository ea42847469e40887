# planhost — build, test, run. `make help` lists the targets.
#
# One set of sources gives three products: build/libplanhost.a, the build/planhost command
# and the Lua module build/planhost.so (for stock lua5.4). `make asan` builds the same under
# AddressSanitizer + UndefinedBehaviorSanitizer into build/asan/.

DEB_PKGS := pkg-config liblua5.4-dev lua5.4 lua-cjson libxxhash-dev libcurl4-openssl-dev \
            lua-busted libmicrohttpd-dev curl clang libclang-rt-dev
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

CC       ?= cc
OPT      ?= -O2 -g
LUA_INC  := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
CFLAGS   += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -fPIC $(OPT) $(LUA_INC)
LIBS     := -lcurl -lxxhash -lm -ldl
CLI_LIBS := -lmicrohttpd
LUA_LIB  := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := buf error jsonw registry tree sandbox sandbox_pattern script script_registry script_tmpl script_json script_jsonenc script_policy script_cache script_batch script_ab wire http request request_llm request_cache request_batch request_provisional circuit latency schema \
            selfcheck host jsonstream jsonstream_scan lua_json planparse planparse_step planparse_write lua_planparse framing lua_framing snapview validate lua_validate cache cache_file lua_cache snaphash snaphash_rules lua_snaphash metrics lua_metrics \
            $(patsubst host/%.c,%,$(wildcard host/record.c)) lua_planhost
# the command: its own front end, the Lua interpreter mode, the simulator (host/sim*.c) and
# the HTTP service (host/serve*.c)
CLI_SRC  := cli cli_lua cli_plan $(patsubst host/%.c,%,$(wildcard host/sim*.c)) serve serve_http serve_body

OUT      ?= build
LIB_OBJ  := $(LIB_SRC:%=$(OUT)/%.o)
CLI_OBJ  := $(CLI_SRC:%=$(OUT)/%.o)
HEADERS  := $(wildcard host/*.h)

.PHONY: all asan deps test run check bench fuzz fuzz-run fuzz-smoke memcheck soak clean help

all: $(OUT)/libplanhost.a $(OUT)/planhost $(OUT)/planhost.so $(OUT)/game_loop

$(OUT)/%.o: host/%.c $(HEADERS) | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT):
	@mkdir -p $(OUT)

$(OUT)/libplanhost.a: $(LIB_OBJ)
	ar rcs $@ $^

# The command links Lua itself and exports its symbols, so C modules it loads (cjson, and
# busted's helpers in `planhost lua`) find them.
$(OUT)/planhost: $(CLI_OBJ) $(OUT)/libplanhost.a
	$(CC) $(CFLAGS) -Wl,-E -o $@ $(CLI_OBJ) $(OUT)/libplanhost.a $(LUA_LIB) $(LIBS) $(CLI_LIBS) $(LDFLAGS)

# The module takes Lua's symbols from the interpreter that loads it: no -llua here.
$(OUT)/planhost.so: $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -o $@ $(LIB_OBJ) $(LIBS) $(LDFLAGS)

# The embedding example (examples/embed/): the public API and the static library, nothing else.
$(OUT)/game_loop: examples/embed/game_loop.c $(OUT)/libplanhost.a host/planhost.h host/error.h
	$(CC) $(CFLAGS) -Ihost -o $@ examples/embed/game_loop.c $(OUT)/libplanhost.a $(LUA_LIB) $(LIBS) $(LDFLAGS)

asan:
	@$(MAKE) --no-print-directory OUT=build/asan OPT="-O1 -g $(SAN)" LDFLAGS="$(SAN)" all

# Installs the Debian packages that are missing (apt-get, through sudo when not root).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: deps
	@$(MAKE) --no-print-directory all asan
	@$(MAKE) --no-print-directory -s $(FUZZ_BINS) >/dev/null
	@sh tests/run.sh

run: deps
	@$(MAKE) --no-print-directory all
	@./build/planhost check
	@echo
	@sh examples/demo.sh

check: all
	@./build/planhost check

bench: deps
	@$(MAKE) --no-print-directory all
	@sh tests/bench/run.sh

# 10,000 requests through the embedding API and planhost serve with faults, cancels and
# reloads (tests/soak/soak.lua; SOAK_ARGS="--requests 2000 --mode api" for a shorter run).
soak: all
	@./build/planhost lua tests/soak/soak.lua $(SOAK_ARGS)

# Every integration spec under valgrind memcheck (tests/memcheck.sh); installs valgrind.
memcheck: deps
	@dpkg-query -W -f='$${Status}' valgrind 2>/dev/null | grep -q "ok installed" || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	@$(MAKE) --no-print-directory all
	@sh tests/memcheck.sh

# ---- fuzzing: libFuzzer through clang, into build/fuzz/ (needs clang and libclang-rt-dev) ----
# The library sources are compiled again with clang (ASan + UBSan + libFuzzer's coverage) into
# build/fuzz/obj/; the gcc builds are not touched. Each tests/fuzz/fuzz_NAME.c links into
# build/fuzz/fuzz_NAME. `make fuzz` builds them, makes the seed corpora (tests/fuzz/seeds.sh),
# replays tests/fuzz/regressions/NAME-*, then fuzzes each target FUZZ_SECONDS seconds; it fails
# when any target crashes (the input lands in build/fuzz/artifacts/, the log in build/fuzz/logs/).
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 65536
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_TARGETS := jsonstream planparse framing snaphash serve_body
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -g -O1 $(LUA_INC) -Ihost $(FUZZ_SAN)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/%.o: host/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libplanhost.a: $(LIB_SRC:%=$(FUZZ_DIR)/obj/%.o)
	rm -f $@; ar rcs $@ $^

# serve_body.c belongs to the command, not the library.
$(FUZZ_DIR)/fuzz_serve_body: $(FUZZ_DIR)/obj/serve_body.o

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_DIR)/libplanhost.a $(HEADERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DPH_SOURCE_ROOT='"$(CURDIR)"' -o $@ \
	  $(filter %.c %.o,$^) $(FUZZ_DIR)/libplanhost.a $(LUA_LIB) $(LIBS)

FUZZ_PKGS    := clang libclang-rt-dev

# Installs clang and libFuzzer's runtime when missing, then builds and runs (fuzz-run).
fuzz: deps
	@missing=""; for p in $(FUZZ_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make fuzz: installing$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(MAKE) --no-print-directory fuzz-run

# What `make test` (tests/run.sh) runs for each target: its regressions, its whole seed corpus, then
# FUZZ_SMOKE_SECONDS of mutation from the seeds with a fixed FUZZ_SEED, so a run on a given
# commit explores the same inputs on every machine (a slower machine covers a prefix of them)
# and CI fails on code changes, not on luck. Random seeds and long runs: make fuzz. A crash
# prints its input (base64) into the log, so it can be turned into a regression fixture.
# Prints one "fuzz NAME: ok|FAILED" line per target.
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_SEED          ?= 20261201
fuzz-smoke: $(FUZZ_BINS)
	@rm -rf $(FUZZ_DIR)/smoke $(FUZZ_DIR)/smoke-artifacts && sh tests/fuzz/seeds.sh $(FUZZ_DIR)/smoke >/dev/null
	@mkdir -p $(FUZZ_DIR)/logs $(FUZZ_DIR)/smoke-artifacts; failed=0; \
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
	for t in $(FUZZ_TARGETS); do \
	  bin=$(FUZZ_DIR)/fuzz_$$t; log=$(FUZZ_DIR)/logs/smoke-$$t.log; \
	  regs=$$(ls tests/fuzz/regressions/$$t-* 2>/dev/null || true); \
	  n=$$(ls $(FUZZ_DIR)/smoke/$$t | wc -l); \
	  if { [ -z "$$regs" ] || $$bin $$regs >$$log 2>&1; } && \
	     $$bin -runs=0 -max_len=$(FUZZ_MAX_LEN) -timeout=10 $(FUZZ_DIR)/smoke/$$t >>$$log 2>&1 && \
	     $$bin -max_total_time=$(FUZZ_SMOKE_SECONDS) -seed=$(FUZZ_SEED) -max_len=$(FUZZ_MAX_LEN) \
	       -timeout=10 -artifact_prefix=$(FUZZ_DIR)/smoke-artifacts/$$t- $(FUZZ_DIR)/smoke/$$t >>$$log 2>&1; then \
	    runs=$$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' $$log | tail -n 1); \
	    echo "fuzz $$t: ok ($$n seeds, the regressions, $${runs:-?} runs with $(FUZZ_SMOKE_SECONDS) s of mutation, seed $(FUZZ_SEED))"; \
	  else \
	    echo "fuzz $$t: FAILED (log $$log)"; failed=1; \
	    grep -m1 -A 24 -E '^==[0-9]+==|runtime error|^fuzz_' $$log | sed 's/^/    /'; \
	    for a in $(FUZZ_DIR)/smoke-artifacts/$$t-*; do [ -f "$$a" ] || continue; \
	      echo "    input $$a (base64; save it as tests/fuzz/regressions/$$t-NAME):"; \
	      head -c 8192 "$$a" | base64 | sed 's/^/      /'; done; \
	  fi; \
	done; exit $$failed

fuzz-run: $(FUZZ_BINS)
	@sh tests/fuzz/seeds.sh $(FUZZ_DIR)/corpus
	@mkdir -p $(FUZZ_DIR)/logs $(FUZZ_DIR)/artifacts; failed=""; \
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
	for t in $(FUZZ_TARGETS); do \
	  bin=$(FUZZ_DIR)/fuzz_$$t; log=$(FUZZ_DIR)/logs/$$t.log; \
	  regs=$$(ls tests/fuzz/regressions/$$t-* 2>/dev/null || true); \
	  if [ -n "$$regs" ] && ! $$bin $$regs >$$log 2>&1; then \
	    echo "fuzz $$t: FAILED on a regression input (log $$log)"; \
	  elif ! $$bin -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 \
	       -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_DIR)/corpus/$$t >$$log 2>&1; then \
	    echo "fuzz $$t: FAILED (log $$log, input in $(FUZZ_DIR)/artifacts/)"; \
	  else \
	    echo "fuzz $$t: $$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*//p' $$log | tail -n 1)"; \
	    continue; \
	  fi; \
	  failed="$$failed $$t"; \
	  grep -m1 -A 24 -E '^==[0-9]+==|runtime error|^fuzz_' $$log | sed 's/^/    /'; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: crashes in:$$failed"; exit 1; fi

clean:
	rm -rf build

help:
	@echo "make run     render the example snapshot through every template"
	@echo "make test    build (normal + sanitizers), the busted suite on both, each fuzz target 30 s"
	@echo "make deps    install missing Debian packages"
	@echo "make asan    sanitizer build into build/asan/"
	@echo "make bench   performance figures against peers, into build/bench/BENCH.md"
	@echo "make memcheck  the integration specs under valgrind memcheck"
	@echo "make soak    10,000 requests with faults, cancels and reloads; report in build/soak/SOAK.md"
	@echo "make fuzz    libFuzzer targets (clang) into build/fuzz/, each run FUZZ_SECONDS (60) s"

$(OUT)/cli.o: CFLAGS += -DPH_SOURCE_ROOT='"$(CURDIR)"'
