/* SPDX-License-Identifier: Apache-2.0 */
/* Python.h first, as it asks: the version the enclave embeds is this build's libpython. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "operator/doctor.h"

#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "attest/pccs.h"
#include "attest/sim.h"
#include "attest/tcb.h"
#include "common/file.h"
#include "operator/proc.h"

static const char *const status_names[] = {"OK", "WARN", "FAIL"};
static const char *const role_names[] = {"all", "codeprovider", "operator"};

const char *mse_doctor_status_name(enum mse_doctor_status s)
{
	return (unsigned)s < 3 ? status_names[s] : "?";
}

const char *mse_doctor_role_name(enum mse_doctor_role r)
{
	return (unsigned)r < 3 ? role_names[r] : "?";
}

int mse_doctor_parse_role(const char *s, enum mse_doctor_role *out, struct mse_err *err)
{
	if (strcmp(s, "codeprovider") == 0)
		*out = MSE_DOCTOR_CODEPROVIDER;
	else if (strcmp(s, "operator") == 0)
		*out = MSE_DOCTOR_OPERATOR;
	else
		return mse_err_expect(err, "--role", "codeprovider or operator", s);
	return 0;
}

struct ctx {
	const struct mse_doctor_opts *o;
	struct mse_doctor_report *r;
	char root[PATH_MAX];
	int sgx_expected; /* the CPU has SGX: missing pieces are failures, not warnings */
	time_t pccs_date; /* the PCCS's Date header, 0 if none */
};

static void add(struct ctx *c, const char *name, enum mse_doctor_status st, const char *fix,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add(struct ctx *c, const char *name, enum mse_doctor_status st, const char *fix,
		const char *fmt, ...)
{
	struct mse_doctor_check *k;
	va_list ap;

	if (c->r->n >= MSE_DOCTOR_MAX_CHECKS)
		return;
	k = &c->r->checks[c->r->n++];
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->status = st;
	va_start(ap, fmt);
	vsnprintf(k->detail, sizeof(k->detail), fmt, ap);
	va_end(ap);
	snprintf(k->fix, sizeof(k->fix), "%s", st == MSE_DOCTOR_OK || !fix ? "" : fix);
	if (st == MSE_DOCTOR_FAIL)
		c->r->fails++;
	else if (st == MSE_DOCTOR_WARN)
		c->r->warns++;
}

/* root + path (path is absolute). */
static const char *at(struct ctx *c, const char *path, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", c->root, path);
	return buf;
}

/* ---- cpu ------------------------------------------------------------------ */

struct cpuid_regs {
	uint32_t leaf, sub, a, b, c, d;
};

static int load_cpuid_file(const char *path, struct cpuid_regs *v, size_t *n, size_t cap,
			   struct mse_err *err)
{
	FILE *f = fopen(path, "r");
	char line[256];
	int lineno = 0;

	*n = 0;
	if (!f)
		return mse_err_field(err, "MSE_DOCTOR_CPUID", "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		struct cpuid_regs r;

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == 0)
			continue;
		if (sscanf(line, "%x %x %x %x %x %x", &r.leaf, &r.sub, &r.a, &r.b, &r.c, &r.d) != 6 ||
		    *n >= cap) {
			fclose(f);
			mse_err_at(err, path, lineno, 1, "%s", "");
			return mse_err_mismatch(err, "LEAF SUBLEAF EAX EBX ECX EDX in hex", line);
		}
		v[(*n)++] = r;
	}
	fclose(f);
	return 0;
}

static void cpuid(const struct cpuid_regs *file, size_t nfile, int use_file, uint32_t leaf,
		  uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 4 * sizeof(uint32_t));
	if (use_file) {
		for (size_t i = 0; i < nfile; i++)
			if (file[i].leaf == leaf && file[i].sub == sub) {
				out[0] = file[i].a, out[1] = file[i].b, out[2] = file[i].c,
				out[3] = file[i].d;
				return;
			}
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	{
		unsigned a, b, c, d;

		if (__get_cpuid_count(leaf, sub, &a, &b, &c, &d))
			out[0] = a, out[1] = b, out[2] = c, out[3] = d;
	}
#endif
}

static int check_cpu(struct ctx *c, struct mse_err *err)
{
	struct cpuid_regs file[64];
	struct mse_doctor_cpu *cpu = &c->r->cpu;
	size_t nfile = 0;
	uint32_t r[4], max;
	int use_file = c->o->cpuid_file != NULL;

	if (use_file && load_cpuid_file(c->o->cpuid_file, file, &nfile, 64, err) != 0)
		return -1;
	cpu->from_file = use_file;
	cpuid(file, nfile, use_file, 0, 0, r);
	max = r[0];
	if (max >= 7) {
		cpuid(file, nfile, use_file, 7, 0, r);
		cpu->sgx = (r[1] >> 2) & 1;  /* CPUID.(EAX=7,ECX=0):EBX[2] SGX */
		cpu->flc = (r[2] >> 30) & 1; /* CPUID.(EAX=7,ECX=0):ECX[30] SGX_LC */
	}
	if (cpu->sgx && max >= 0x12) {
		cpuid(file, nfile, use_file, 0x12, 0, r);
		cpu->sgx1 = r[0] & 1;
		cpu->sgx2 = (r[0] >> 1) & 1;
		cpu->max_enclave_bits_64 = (int)((r[3] >> 8) & 0xff);
		/* Sub-leaves 2.. enumerate EPC sections (Intel SDM vol. 3D, 36.7.2). */
		for (uint32_t s = 2; s < 2 + 16; s++) {
			cpuid(file, nfile, use_file, 0x12, s, r);
			if ((r[0] & 0xf) != 1)
				break;
			cpu->epc_bytes += ((uint64_t)(r[3] & 0xfffff) << 32) | (r[2] & 0xfffff000u);
		}
	}
	c->sgx_expected = cpu->sgx;
	if (!cpu->sgx) {
		add(c, "cpu", MSE_DOCTOR_WARN,
		    "nothing to do for simulation (the default here: 'mse deploy' runs the enclave "
		    "simulated, SIMULATION — not confidential); for real enclaves use an SGX machine "
		    "with FLC (e.g. Azure DCsv3, Xeon Scalable 3rd gen+)",
		    "no SGX in this CPU (CPUID.7.0:EBX[2] = 0%s): enclaves run in simulation, not "
		    "confidential",
		    use_file ? ", from MSE_DOCTOR_CPUID" : "");
		return 0;
	}
	if (!cpu->sgx1 || !cpu->epc_bytes) {
		add(c, "cpu", MSE_DOCTOR_FAIL,
		    "enable SGX in the BIOS/UEFI (\"SGX: Enabled\", not \"Software Controlled\") and "
		    "reserve EPC memory (PRMRR size), then reboot",
		    "SGX is in the CPU but not usable: SGX1 %s, EPC %llu MiB (CPUID.0x12)",
		    cpu->sgx1 ? "yes" : "no", (unsigned long long)(cpu->epc_bytes >> 20));
		return 0;
	}
	if (!cpu->flc) {
		add(c, "cpu", MSE_DOCTOR_FAIL,
		    "Gramine and DCAP attestation need Flexible Launch Control: enable it in the "
		    "BIOS if offered, or use a CPU with FLC; meanwhile use simulation",
		    "SGX1%s, EPC %llu MiB, but no Flexible Launch Control (CPUID.7.0:ECX[30] = 0)",
		    cpu->sgx2 ? ", SGX2" : "", (unsigned long long)(cpu->epc_bytes >> 20));
		return 0;
	}
	add(c, "cpu", MSE_DOCTOR_OK, NULL, "SGX1%s, FLC, EPC %llu MiB, enclaves up to 2^%d bytes",
	    cpu->sgx2 ? ", SGX2" : " (no SGX2: no dynamic enclave memory)",
	    (unsigned long long)(cpu->epc_bytes >> 20), cpu->max_enclave_bits_64);
	return 0;
}

/* ---- devices, AESM ----------------------------------------------------------- */

static void check_device(struct ctx *c, const char *name, const char *path, const char *group)
{
	char p[PATH_MAX + 64], fix[512];
	struct stat st;
	enum mse_doctor_status missing = MSE_DOCTOR_FAIL;

	at(c, path, p, sizeof(p));
	if (stat(p, &st) != 0) {
		if (!c->sgx_expected) {
			add(c, name, MSE_DOCTOR_OK, NULL, "%s: absent (not needed: no SGX here)", path);
			return;
		}
		add(c, name, missing,
		    "use Linux 5.11 or later (the in-kernel SGX driver) with SGX enabled in the "
		    "BIOS; check 'dmesg | grep -i sgx'",
		    "%s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISCHR(st.st_mode)) {
		add(c, name, MSE_DOCTOR_FAIL, "remove it: the kernel driver creates this device",
		    "%s is not a character device (mode %o)", path, (unsigned)st.st_mode);
		return;
	}
	if (access(p, R_OK | W_OK) != 0) {
		snprintf(fix, sizeof(fix),
			 "add yourself to its group ('sudo usermod -aG %s $USER', then log in again) "
			 "or give it mode 0660 with a udev rule",
			 group);
		add(c, name, MSE_DOCTOR_FAIL, fix, "%s: not readable and writable by this user (mode %o, gid %u): %s",
		    path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_gid, strerror(errno));
		return;
	}
	add(c, name, MSE_DOCTOR_OK, NULL, "%s: character device, mode %o, usable by this user", path,
	    (unsigned)(st.st_mode & 07777));
}

static void check_aesm(struct ctx *c)
{
	static const char path[] = "/var/run/aesmd/aesm.socket";
	char p[PATH_MAX + 64];
	struct stat st;

	at(c, path, p, sizeof(p));
	if (stat(p, &st) != 0) {
		if (!c->sgx_expected) {
			add(c, "aesm", MSE_DOCTOR_OK, NULL, "%s: absent (not needed: no SGX here)", path);
			return;
		}
		add(c, "aesm", MSE_DOCTOR_FAIL,
		    "install and start Intel's AESM: 'apt install sgx-aesm-service "
		    "libsgx-aesm-ecdsa-plugin libsgx-dcap-default-qpl', 'systemctl enable --now aesmd'",
		    "%s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISSOCK(st.st_mode)) {
		add(c, "aesm", MSE_DOCTOR_FAIL, "restart aesmd ('systemctl restart aesmd')",
		    "%s is not a socket", path);
		return;
	}
	add(c, "aesm", MSE_DOCTOR_OK, NULL, "%s: socket present", path);
}

/* ---- QCNL, PCCS -------------------------------------------------------------- */

/* use_secure_cert in the QCNL JSON: 1, 0, or -1 when absent. */
static int qcnl_secure_cert(const char *path)
{
	uint8_t *text = NULL;
	size_t len;
	const char *k;
	int v = -1;

	if (mse_file_read(path, 1u << 20, &text, &len, NULL) != 0)
		return -1;
	k = memmem(text, len, "\"use_secure_cert\"", 17);
	if (k) {
		k += 17;
		while (k < (const char *)text + len && strchr(" \t\r\n:", *k))
			k++;
		if ((size_t)((const char *)text + len - k) >= 4 && !strncasecmp(k, "true", 4))
			v = 1;
		else if ((size_t)((const char *)text + len - k) >= 5 && !strncasecmp(k, "false", 5))
			v = 0;
	}
	free(text);
	return v;
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
	(void)p;
	(void)user;
	return size * n;
}

static size_t header_cb(char *p, size_t size, size_t n, void *user)
{
	struct ctx *c = user;
	size_t len = size * n;
	char line[128];

	if (len > 5 && len < sizeof(line) && !strncasecmp(p, "Date:", 5)) {
		memcpy(line, p + 5, len - 5);
		line[len - 5] = 0;
		c->pccs_date = curl_getdate(line + strspn(line, " "), NULL);
		if (c->pccs_date < 0)
			c->pccs_date = 0;
	}
	return len;
}

static void check_qcnl_pccs(struct ctx *c)
{
	static const char path[] = "/etc/sgx_default_qcnl.conf";
	char p[PATH_MAX + 64], url[600], m[2048];
	struct mse_err e = {0};
	int secure;
	CURL *h;
	CURLcode cc;
	long code = 0;

	at(c, path, p, sizeof(p));
	if (!mse_file_exists(p)) {
		add(c, "qcnl", c->sgx_expected ? MSE_DOCTOR_FAIL : MSE_DOCTOR_WARN,
		    "install libsgx-dcap-default-qpl and set \"pccs_url\" in /etc/sgx_default_qcnl.conf "
		    "to your PCCS (https://HOST:8081/sgx/certification/v4/), or pass 'mse verify "
		    "--pccs URL'",
		    "%s: not found%s", path, c->sgx_expected ? "" : " (not needed for simulation)");
		add(c, "pccs", MSE_DOCTOR_WARN, "configure the QCNL first (see qcnl)",
		    "not checked: no PCCS configured");
		return;
	}
	if (mse_pccs_qcnl_url(p, c->r->pccs_url, sizeof(c->r->pccs_url), &e) != 0) {
		/* Name the file as the user knows it, not under the test root. */
		if (strcmp(e.file, p) == 0)
			snprintf(e.file, sizeof(e.file), "%s", path);
		add(c, "qcnl", MSE_DOCTOR_FAIL,
		    "fix the file: it is JSON (with // comments); \"pccs_url\": "
		    "\"https://HOST:8081/sgx/certification/v4/\"",
		    "%s", mse_err_str(&e, m, sizeof(m)));
		add(c, "pccs", MSE_DOCTOR_WARN, "fix the QCNL configuration first",
		    "not checked: no usable PCCS URL");
		c->r->pccs_url[0] = 0;
		return;
	}
	secure = qcnl_secure_cert(p);
	if (secure == 0)
		add(c, "qcnl", MSE_DOCTOR_WARN,
		    "set \"use_secure_cert\": true once the PCCS has a certificate from a CA this "
		    "machine trusts (a self-signed PCCS certificate is the usual reason it is false)",
		    "%s: pccs_url %s; use_secure_cert is false: the PCCS's TLS certificate is not "
		    "checked (the collateral itself is signed by Intel and verified)",
		    path, c->r->pccs_url);
	else
		add(c, "qcnl", MSE_DOCTOR_OK, NULL, "%s: pccs_url %s, use_secure_cert %s", path,
		    c->r->pccs_url, secure == 1 ? "true" : "absent (default true)");

	if (mse_pccs_root_crl_url(c->r->pccs_url, url, sizeof(url), NULL) != 0)
		snprintf(url, sizeof(url), "%srootcacrl", c->r->pccs_url);
	h = curl_easy_init();
	if (!h) {
		add(c, "pccs", MSE_DOCTOR_WARN, NULL, "not checked: out of memory");
		return;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(c->o->pccs_timeout_s ? c->o->pccs_timeout_s : 3));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(1 << 20));
	if (secure == 0) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK)
		add(c, "pccs", c->sgx_expected ? MSE_DOCTOR_FAIL : MSE_DOCTOR_WARN,
		    "start the PCCS ('systemctl start pccs') or correct pccs_url; a self-signed PCCS "
		    "needs \"use_secure_cert\": false",
		    "GET %s: %s", url, curl_easy_strerror(cc));
	else if (code != 200)
		add(c, "pccs", MSE_DOCTOR_FAIL,
		    "check the PCCS log: it answers, but not with the root CA CRL (an API key for "
		    "Intel's PCS missing, or the wrong API version in pccs_url?)",
		    "GET %s: HTTP %ld", url, code);
	else
		add(c, "pccs", MSE_DOCTOR_OK, NULL, "GET %s: HTTP 200", url);
}

static void check_collateral(struct ctx *c)
{
	struct mse_pccs_opts po = {0};
	char dir[PATH_MAX], sub[PATH_MAX + 300], which[64], t[32], first[PATH_MAX + 300] = "";
	size_t entries = 0, expired = 0, bad = 0;
	time_t earliest = 0;
	struct dirent *de;
	DIR *d;

	/* mse_pccs_cache_path gives DIR/<fmspc>-<ca>: its parent is the cache. */
	if (mse_pccs_cache_path(&po, "000000000000", "processor", dir, sizeof(dir), NULL) != 0) {
		add(c, "collateral", MSE_DOCTOR_WARN, "set HOME or XDG_CACHE_HOME",
		    "cannot locate the collateral cache");
		return;
	}
	*strrchr(dir, '/') = 0;
	d = opendir(dir);
	if (!d) {
		add(c, "collateral", MSE_DOCTOR_OK, NULL,
		    "%s: empty (filled by 'mse verify --pccs' and 'mse evidence' in SGX mode)", dir);
		return;
	}
	while ((de = readdir(d))) {
		time_t next;

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		entries++;
		if (mse_pccs_dir_next_update(sub, &next, which, sizeof(which), NULL) != 0) {
			bad++;
			if (!first[0])
				snprintf(first, sizeof(first), "%s", sub);
			continue;
		}
		if (next <= c->r->now)
			expired++;
		if (!earliest || next < earliest)
			earliest = next;
	}
	closedir(d);
	if (!entries) {
		add(c, "collateral", MSE_DOCTOR_OK, NULL, "%s: empty", dir);
		return;
	}
	mse_tcb_format_time(earliest, t);
	if (bad)
		add(c, "collateral", MSE_DOCTOR_WARN,
		    "remove the broken entries: the next 'mse verify --pccs' fetches them again",
		    "%s: %zu entr%s, %zu unreadable (e.g. %s)", dir, entries, entries == 1 ? "y" : "ies",
		    bad, first);
	else if (expired)
		add(c, "collateral", MSE_DOCTOR_WARN,
		    "nothing to do online: the next 'mse verify --pccs' fetches fresh collateral "
		    "(offline verification fails until then)",
		    "%s: %zu entr%s, %zu expired (earliest nextUpdate %s)", dir, entries,
		    entries == 1 ? "y" : "ies", expired, t);
	else
		add(c, "collateral", MSE_DOCTOR_OK, NULL, "%s: %zu entr%s, valid until %s", dir,
		    entries, entries == 1 ? "y" : "ies", t);
}

/* ---- Gramine, Python, Flask -------------------------------------------------- */

/* The first PATH entry holding an executable name; 0 or -1. */
static int which(const char *name, char *out, size_t n)
{
	const char *path = getenv("PATH");

	while (path && *path) {
		size_t k = strcspn(path, ":");

		if (k && (size_t)snprintf(out, n, "%.*s/%s", (int)k, path, name) < n &&
		    access(out, X_OK) == 0)
			return 0;
		path += k + (path[k] == ':');
	}
	return -1;
}

/* Runs argv with output to a temporary file, at most 5 s; the first line into out. */
static int first_line_of(char *const argv[], char *out, size_t n)
{
	char tmpl[] = "/tmp/mse-doctor.XXXXXX";
	int fd = mkstemp(tmpl), rc = -1;
	pid_t pid;
	FILE *f;

	out[0] = 0;
	if (fd < 0)
		return -1;
	close(fd);
	pid = mse_proc_start(NULL, argv, NULL, tmpl, NULL);
	if (pid > 0) {
		int st, waited = 0;

		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (waited++ >= 50) {
				mse_proc_stop(pid, 500);
				break;
			}
			usleep(100 * 1000);
		}
		f = fopen(tmpl, "r");
		if (f) {
			if (fgets(out, (int)n, f)) {
				out[strcspn(out, "\r\n")] = 0;
				rc = 0;
			}
			fclose(f);
		}
	}
	unlink(tmpl);
	return rc;
}

static void check_gramine(struct ctx *c)
{
	char path[PATH_MAX];
	char *argv[] = {path, "--version", NULL};

	if (which("gramine-sgx", path, sizeof(path)) != 0) {
		if (!c->sgx_expected) {
			add(c, "gramine", MSE_DOCTOR_OK, NULL,
			    "gramine-sgx: not on PATH (not needed: no SGX here)");
			return;
		}
		add(c, "gramine", MSE_DOCTOR_FAIL,
		    "install Gramine (https://gramine.readthedocs.io: 'apt install gramine' from "
		    "packages.gramineproject.io) so that gramine-sgx is on PATH",
		    "gramine-sgx: not on PATH");
		return;
	}
	if (first_line_of(argv, c->r->gramine_version, sizeof(c->r->gramine_version)) != 0 ||
	    !c->r->gramine_version[0]) {
		add(c, "gramine", MSE_DOCTOR_WARN, "reinstall Gramine",
		    "%s: found, but '--version' printed nothing", path);
		return;
	}
	add(c, "gramine", MSE_DOCTOR_OK, NULL, "%s: %s", path, c->r->gramine_version);
}

/* "Version: X" of a PKG-INFO or METADATA file. */
static int read_version(const char *file, char *out, size_t n)
{
	FILE *f = fopen(file, "r");
	char line[256];
	int rc = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Version:", 8)) {
			snprintf(out, n, "%s", line + 8 + strspn(line + 8, " \t"));
			out[strcspn(out, "\r\n")] = 0;
			rc = 0;
			break;
		}
	fclose(f);
	return rc;
}

static void check_python(struct ctx *c)
{
	char dist[PATH_MAX + 64], meta[PATH_MAX + 400];
	const char *v = Py_GetVersion();
	struct dirent *de;
	DIR *d;

	/* The libpython linked into mse-bootstrap: this build's, Debian's 3.11. */
	snprintf(c->r->python_version, sizeof(c->r->python_version), "%.*s", (int)strcspn(v, " "), v);
	if (strncmp(c->r->python_version, PY_VERSION, strlen("3.11")) != 0)
		add(c, "python", MSE_DOCTOR_FAIL, "rebuild mse against the installed libpython3.11-dev",
		    "libpython %s at run time, built against %s", c->r->python_version, PY_VERSION);
	else
		add(c, "python", MSE_DOCTOR_OK, NULL,
		    "the enclave embeds Python %s (libpython%d.%d, modules from /usr/lib/python3/"
		    "dist-packages; no pip inside)",
		    c->r->python_version, PY_MAJOR_VERSION, PY_MINOR_VERSION);

	at(c, "/usr/lib/python3/dist-packages", dist, sizeof(dist));
	d = opendir(dist);
	while (d && (de = readdir(d))) {
		const char *dot;

		if (strncasecmp(de->d_name, "flask-", 6) != 0)
			continue;
		dot = strrchr(de->d_name, '.');
		if (dot && !strcmp(dot, ".egg-info"))
			snprintf(meta, sizeof(meta), "%s/%s/PKG-INFO", dist, de->d_name);
		else if (dot && !strcmp(dot, ".dist-info"))
			snprintf(meta, sizeof(meta), "%s/%s/METADATA", dist, de->d_name);
		else
			continue;
		if (read_version(meta, c->r->flask_version, sizeof(c->r->flask_version)) == 0)
			break;
	}
	if (d)
		closedir(d);
	if (c->r->flask_version[0])
		add(c, "flask", MSE_DOCTOR_OK, NULL, "Flask %s (/usr/lib/python3/dist-packages)",
		    c->r->flask_version);
	else
		add(c, "flask", MSE_DOCTOR_WARN,
		    "'apt install python3-flask' (apps' dependencies are Debian python3-* packages)",
		    "Flask is not installed in /usr/lib/python3/dist-packages: Flask apps cannot run");
}

/* ---- simulation root, clock ----------------------------------------------------- */

static void check_simulation(struct ctx *c)
{
	char dir[PATH_MAX], p[PATH_MAX + 32], t[32], m[2048];
	struct mse_sim *sim = NULL;
	struct mse_err e = {0};
	const unsigned char *q;
	uint8_t *der = NULL;
	size_t len;
	X509 *x = NULL;

	if (mse_sim_dir(dir, sizeof(dir), &e) != 0) {
		add(c, "simulation", MSE_DOCTOR_WARN, "set HOME or MSE_SIM_DIR", "%s",
		    mse_err_str(&e, m, sizeof(m)));
		return;
	}
	if (!mse_sim_exists(dir)) {
		add(c, "simulation", MSE_DOCTOR_OK, NULL,
		    "%s: not created yet (the first 'mse deploy' or 'mse spawn' creates it; or 'mse "
		    "sim init')",
		    dir);
		return;
	}
	if (mse_sim_load(dir, &sim, &e) != 0) {
		add(c, "simulation", MSE_DOCTOR_FAIL,
		    "recreate it with 'mse sim init --force' (enclaves spawned with the old one must "
		    "be spawned again)",
		    "%s: %s", dir, mse_err_str(&e, m, sizeof(m)));
		return;
	}
	mse_sim_free(sim);
	snprintf(p, sizeof(p), "%s/root_ca.der", dir);
	if (mse_file_read(p, 1 << 16, &der, &len, NULL) == 0) {
		q = der;
		x = d2i_X509(NULL, &q, (long)len);
	}
	free(der);
	if (!x) {
		add(c, "simulation", MSE_DOCTOR_FAIL, "recreate it with 'mse sim init --force'",
		    "%s: not a DER certificate", p);
		return;
	}
	if (X509_cmp_time(X509_get0_notAfter(x), &c->r->now) <= 0) {
		add(c, "simulation", MSE_DOCTOR_FAIL, "recreate it with 'mse sim init --force'",
		    "%s: the simulation root CA has expired", p);
	} else {
		struct tm tm;
		time_t na;

		ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
		na = timegm(&tm);
		mse_tcb_format_time(na, t);
		add(c, "simulation", MSE_DOCTOR_OK, NULL,
		    "%s: simulation root valid until %s (SIMULATION — not confidential)", dir, t);
	}
	X509_free(x);
}

static void check_clock(struct ctx *c)
{
	char t[32];
	long skew;

	mse_tcb_format_time(c->r->now, t);
	if (c->r->now < 1704067200) { /* 2024-01-01 */
		add(c, "clock", MSE_DOCTOR_FAIL,
		    "set the clock (systemd-timesyncd, chrony): certificates and collateral are "
		    "checked against it",
		    "the system clock says %s, before 2024", t);
		return;
	}
	if (!c->pccs_date) {
		add(c, "clock", MSE_DOCTOR_OK, NULL, "%s (no reference to compare with)", t);
		return;
	}
	skew = (long)(c->r->now - c->pccs_date);
	if (skew > 300 || skew < -300)
		add(c, "clock", MSE_DOCTOR_WARN,
		    "synchronise the clock (systemd-timesyncd, chrony): collateral validity is "
		    "checked against it",
		    "%s, %ld s %s the PCCS's clock", t, skew < 0 ? -skew : skew,
		    skew < 0 ? "behind" : "ahead of");
	else
		add(c, "clock", MSE_DOCTOR_OK, NULL, "%s, within %ld s of the PCCS's clock", t,
		    skew < 0 ? -skew : skew);
}

int mse_doctor_run(const struct mse_doctor_opts *o, struct mse_doctor_report *r,
		   struct mse_err *err)
{
	struct ctx c = {.o = o, .r = r};
	int op = o->role != MSE_DOCTOR_CODEPROVIDER;

	memset(r, 0, sizeof(*r));
	r->now = time(NULL);
	if (o->root && strcmp(o->root, "/") != 0) {
		snprintf(c.root, sizeof(c.root), "%s", o->root);
		while (strlen(c.root) > 1 && c.root[strlen(c.root) - 1] == '/')
			c.root[strlen(c.root) - 1] = 0;
	}
	/* The CPU decides whether missing SGX pieces are failures (both roles need to know). */
	if (check_cpu(&c, err) != 0)
		return -1;
	if (!op) {
		/* The code provider only sees whether SGX is here; drop the cpu line. */
		r->n = 0;
		r->fails = r->warns = 0;
	}
	if (op) {
		check_device(&c, "sgx_enclave", "/dev/sgx_enclave", "sgx");
		check_device(&c, "sgx_provision", "/dev/sgx_provision", "sgx_prv");
		check_aesm(&c);
	}
	check_qcnl_pccs(&c);
	check_collateral(&c);
	if (op)
		check_gramine(&c);
	check_python(&c);
	check_simulation(&c);
	check_clock(&c);
	return 0;
}
