# Prompt Valet — the two commands a newcomer needs are `make demo` and
# `make test`; both do their own set-up on a fresh Debian machine.
SHELL := /bin/bash
NPM ?= npm
PREFIX ?= /srv/prompt-valet
DESTDIR ?=

.PHONY: all deps system-deps build lint test demo bench bench-quick install uninstall clean

all: build

# npm ci only when the lock file is newer than the last install.
node_modules/.package-lock.json: package-lock.json package.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

system-deps:
	@scripts/ensure-system-deps.sh

# tsc, then one esbuild bundle per tool (scripts/bundle.mjs): the bundles are
# what `make install` deploys; the dev bins (packages/*/bin) run dist/.
build: deps
	npx tsc -b
	node scripts/bundle.mjs --quiet

# Tests are type-checked too (tap runs them transpile-only), and ESLint's short list.
lint: deps
	npm run --silent lint

# Includes the live suite (test/live/: a Debian 12 booted with systemd as
# PID 1 in a container); PV_LIVE set to 0 skips it for a quick loop, and says so.
test: system-deps build lint
	npx tap

demo: system-deps build
	node scripts/demo.mjs $(if $(KEEP),--keep)

bench: build
	node bench/run.mjs

bench-quick: build
	node bench/run.mjs --quick

# DESTDIR stages everything under it (no user, no systemctl); without it
# this installs onto the running system. More choices: INSTALL_FLAGS="--owner
# my-org --file-server copyparty --start" (see pv-install --help).
install: build
	node packages/install/bin/pv-install.js --root "$(if $(DESTDIR),$(DESTDIR),/)" --prefix "$(PREFIX)" $(INSTALL_FLAGS)

# Removes units, scripts/ and the /srv/repos link; never inbox, processed,
# finished, repos, config or logs.
uninstall:
	node packages/install/bin/pv-install.js --uninstall --root "$(if $(DESTDIR),$(DESTDIR),/)" --prefix "$(PREFIX)"

clean:
	npx tsc -b --clean
	rm -rf packages/*/bundle packages/*/bundle.*
	rm -rf .tap
