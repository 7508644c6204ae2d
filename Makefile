# samba-dfsr build. `./setup` prepares the Samba tree and runs `make all
# install`; `make test` is the test command (see README.md).
SHELL := /bin/bash
TREE := $(shell tools/samba-tree 2>/dev/null)
SAMBALIB := /usr/lib/x86_64-linux-gnu/samba
VFSDIR := $(SAMBALIB)/vfs
PREFIX := /usr/local
BUILD := build
# The staticlib dfsr.so and dfsrd link: built without the simulation
# (cargo feature `sim`) and copied out of target/, where the default-feature
# builds of dfsrctl and the tests put their own.
RUSTLIB := $(BUILD)/libsamba_dfsr.a
CARGO ?= cargo

# The Samba defines and include paths are build.rs's (its SAMBA_DEFINES and
# SAMBA_INCLUDES, shared/notes/samba-build.md): the Rust build writes them
# as SAMBA_CPPFLAGS into $(SAMBA_FLAGS_MK), made first when missing.
SAMBA_FLAGS_MK := $(BUILD)/samba-flags.mk
-include $(SAMBA_FLAGS_MK)
CPPFLAGS := -Iinclude $(SAMBA_CPPFLAGS)
CFLAGS := -O2 -g -fPIC -Wall -Wno-unused-function
SAMBA_LINK := -L$(SAMBALIB) -Wl,-rpath,$(SAMBALIB)
MODULE_LIBS := -l:libsmbd-base-samba4.so.0 -l:libsmbconf.so.0 \
	-l:libndr-samba4.so.0 -l:libsamba-sockets-samba4.so.0 \
	-l:libsamba-util.so.0 -l:libsamba-debug-samba4.so.0 \
	-l:libsmbd-shim-samba4.so.0 -ltalloc
RUST_NATIVE := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
# gensec for the MS-FRS2 wire (src/c/gensec_shim.c, in the staticlib).
GENSEC_LIBS := -l:libauth-samba4.so.0 -l:libgensec-samba4.so.0 \
	-l:libsamba-credentials.so.1 -l:libsamba-sockets-samba4.so.0
# The Rust staticlib bundles the meet's IRPC client and VFS primitives
# (build.rs).
RUST_SAMBA_LIBS := -l:libtdb.so.1 -l:libMESSAGING-samba4.so.0 -l:libMESSAGING-SEND-samba4.so.0 -l:libsamba-hostconfig.so.0 \
	-l:libndr.so.3 -l:libdcerpc-binding.so.0 -l:libsamba-errors.so.1 \
	-l:libtevent.so.0 -l:libtevent-util.so.0 -l:libtalloc.so.2 -l:libbsd.so.0 \
	$(GENSEC_LIBS)
# dfsrd: Samba-linked daemon (shared/notes/meet-host.md, link line).
DFSRD_LIBS := -l:libsmbd-base-samba4.so.0 -l:libsmbd-shim-samba4.so.0 \
	-l:libauth-samba4.so.0 -l:libsamba3-util-samba4.so.0 \
	-l:libsecrets3-samba4.so.0 -l:libsamba-passdb.so.0 \
	-l:libsamba-security-samba4.so.0 -l:libsamba-debug-samba4.so.0 \
	-l:libMESSAGING-samba4.so.0 -l:libMESSAGING-SEND-samba4.so.0 \
	-l:libsmbconf.so.0 -l:libsamba-util.so.0 -l:libndr.so.3 \
	-l:libsamba-errors.so.1 -l:libsamba-hostconfig.so.0 \
	-l:libdcerpc-binding.so.0 -l:libtevent-util.so.0 -l:libtevent.so.0 \
	-l:libtalloc.so.2 -l:libRPC-WORKER-samba4.so.0 \
	-l:libcmdline-samba4.so.0 -l:libsys-rw-samba4.so.0 -l:libtdb.so.1 -lpopt -l:libbsd.so.0 \
	$(GENSEC_LIBS)
GEN := $(BUILD)/gen

.PHONY: all check-tree rust FORCE header install test unit-test integration-test \
	bench demo intree clean

all: $(BUILD)/dfsr.so $(BUILD)/dfsrd $(BUILD)/smbtorture-dfsr.so rust

check-tree:
	@test -n "$(TREE)" || { tools/samba-tree; exit 1; }

# Only when missing or build.rs changed; make then reads it again.
$(SAMBA_FLAGS_MK): build.rs | check-tree
	$(CARGO) build --release --lib --no-default-features
	@test -s $@ && touch $@

# Cargo decides what is stale (FORCE: always ask it); the .a and the
# binaries come from one build.
rust: $(RUSTLIB)

$(RUSTLIB): FORCE | check-tree
	$(CARGO) build --release --bins
	$(CARGO) build --release --lib --no-default-features
	@mkdir -p $(BUILD)
	cp -p target/release/libsamba_dfsr.a $@

FORCE:

$(BUILD)/vfs_dfsr.o: src/c/vfs_dfsr.c include/dfsr.h | check-tree
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# smbtorture code is source4 code: source4's includes.h comes first.
TORTURE_OBJS := $(BUILD)/torture_dfsr.o $(BUILD)/torture_dfsr_meet.o \
	$(BUILD)/torture_ndr_dfsr_meet.o $(BUILD)/torture_ndr_dfsr_meet_c.o
$(BUILD)/torture_%.o: src/c/torture_%.c src/c/torture_dfsr.h $(GEN)/dfsr_meet.h | check-tree
	@mkdir -p $(BUILD)
	$(CC) -I$(TREE)/source4/include -I$(GEN) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
# The meet's IRPC client code (pidl) for the dfsr.meet tests.
$(BUILD)/torture_%.o: $(GEN)/%.c $(GEN)/dfsr_meet.h | check-tree
	$(CC) -I$(TREE)/source4/include -I$(GEN) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# Exports only samba_init_module; every Samba reference resolved against
# Debian's installed libraries by soname.
$(BUILD)/dfsr.so: $(BUILD)/vfs_dfsr.o $(RUSTLIB) src/c/samba_module.map
	$(CC) -shared -o $@ $(BUILD)/vfs_dfsr.o $(RUSTLIB) \
		-Wl,--version-script=src/c/samba_module.map -Wl,--gc-sections \
		-Wl,--no-undefined $(SAMBA_LINK) $(MODULE_LIBS) $(RUST_SAMBA_LIBS) \
		$(RUST_NATIVE)

# Headers pidl makes of our IRPC interface (build.rs makes the NDR code that
# goes into the Rust staticlib from the same IDL).
$(GEN)/dfsr_meet.h: include/dfsr_meet.idl | check-tree
	@mkdir -p $(GEN)
	cd $(TREE) && perl pidl/pidl --quiet --includedir librpc/idl --header \
		--ndr-parser --client --outputdir $(CURDIR)/$(GEN) -- $(CURDIR)/$<
# pidl writes the NDR and client code in the same run.
$(GEN)/ndr_dfsr_meet.c $(GEN)/ndr_dfsr_meet_c.c: $(GEN)/dfsr_meet.h
	@test -f $@

$(BUILD)/dfsrd.o: src/c/dfsrd.c include/dfsr.h $(GEN)/dfsr_meet.h | check-tree
	$(CC) -I$(GEN) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/dfsrd: $(BUILD)/dfsrd.o $(RUSTLIB) src/c/dfsrd.dynlist
	$(CC) -o $@ $(BUILD)/dfsrd.o $(RUSTLIB) -Wl,--gc-sections \
		-Wl,--dynamic-list=src/c/dfsrd.dynlist \
		-Wl,--no-undefined $(SAMBA_LINK) $(DFSRD_LIBS) $(RUST_NATIVE)

# The torture suite uses helpers that live in the smbtorture executable
# itself (it exports them), so undefined symbols are allowed here.
$(BUILD)/smbtorture-dfsr.so: $(TORTURE_OBJS) src/c/samba_module.map
	$(CC) -shared -o $@ $(TORTURE_OBJS) \
		-Wl,--version-script=src/c/samba_module.map $(SAMBA_LINK) \
		-l:libtorture-samba4.so.0 -l:libsmbclient-raw-samba4.so.0 \
		-l:libndr-samba4.so.0 -l:libMESSAGING-samba4.so.0 -l:libMESSAGING-SEND-samba4.so.0 \
		-l:libdcerpc-binding.so.0 -l:libndr.so.3 -l:libtevent.so.0 \
		-l:libsamba-security-samba4.so.0 \
		-l:libsamba-util.so.0 -l:libsamba-errors.so.1 -ltalloc

# Refresh the committed C header from src/ffi/exports.rs.
header: check-tree
	DFSR_WRITE_HEADER=1 $(CARGO) build --release --lib

install: all
	install -D -m 0644 $(BUILD)/dfsr.so $(DESTDIR)$(VFSDIR)/dfsr.so
	install -D -m 0755 target/release/dfsrctl $(DESTDIR)$(PREFIX)/bin/dfsrctl
	install -D -m 0755 $(BUILD)/dfsrd $(DESTDIR)$(PREFIX)/sbin/dfsrd
	install -D -m 0644 $(BUILD)/smbtorture-dfsr.so \
		$(DESTDIR)$(PREFIX)/lib/samba-dfsr/smbtorture-dfsr.so

# The test command: unit tests, then integration tests against a private
# smbd that loads the dfsr.so just built (tests/support).
test: all
	DFSR_MODULE_SO=$(CURDIR)/$(BUILD)/dfsr.so DFSRD=$(CURDIR)/$(BUILD)/dfsrd \
	DFSR_TORTURE_SO=$(CURDIR)/$(BUILD)/smbtorture-dfsr.so \
	$(CARGO) test --release -- --test-threads=2

bench: all
	DFSR_MODULE_SO=$(CURDIR)/$(BUILD)/dfsr.so $(CARGO) bench --bench vfs_overhead

demo: all
	DFSR_MODULE_SO=$(CURDIR)/$(BUILD)/dfsr.so $(CARGO) run --release --example demo

# The in-tree route upstream Samba would take: build vfs_dfsr with waf in
# the prepared tree through our wscript_build (about 3 minutes).
intree: rust
	tools/build-intree

clean:
	rm -rf $(BUILD)
	$(CARGO) clean
