/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/attest/pck (SGX extensions of real PCK certificates, checked against
 * python3-cryptography's reading of the same DER) and src/attest/jspan (exact
 * spans, duplicates, malformed JSON).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "attest/jspan.h"
#include "attest/pck.h"
#include "attest/quote.h"
#include "attest/tcb.h"
#include "common/hex.h"

/*
 * Python reads the same extension with python3-cryptography's DER decoder
 * (pyasn1-free: it walks the TLVs with its own code below) and prints
 * "fmspc pceid pcesvn c1,…,c16".
 */
static const char pyscript[] =
	"import sys,re\n"
	"from cryptography import x509\n"
	"q=open(sys.argv[1],'rb').read()\n"
	"leaf=x509.load_pem_x509_certificate(re.findall(rb'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----',q,re.S)[0])\n"
	"d=leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier('1.2.840.113741.1.13.1')).value.value\n"
	"def tlv(b,i):\n"
	"  t=b[i];l=b[i+1];i+=2\n"
	"  if l&0x80:\n"
	"    n=l&0x7f;l=int.from_bytes(b[i:i+n],'big');i+=n\n"
	"  return t,b[i:i+l],i+l\n"
	"def seq(b):\n"
	"  i=0;out=[]\n"
	"  while i<len(b):\n"
	"    t,v,i=tlv(b,i);out.append((t,v))\n"
	"  return out\n"
	"top=seq(tlv(d,0)[1]);r={}\n"
	"for _,p in top:\n"
	"  (_,oid),(t,v)=seq(p)\n"
	"  r[oid[-1] if len(oid)==10 else None]=(t,v)\n"
	"tcb=seq(r[2][1]);comps=[];pcesvn=None\n"
	"for _,p in tcb:\n"
	"  (_,oid),(t,v)=seq(p)\n"
	"  if oid[-1]<=16: comps.append(int.from_bytes(v,'big'))\n"
	"  elif oid[-1]==17: pcesvn=int.from_bytes(v,'big')\n"
	"print(r[4][1].hex(),r[3][1].hex(),pcesvn,','.join(map(str,comps)))\n";

static void pck_matches_independent_reading(void **state)
{
	static const char *quotes[] = {"sgx-quote-cosmian/quote.dat", "dcap-quotes/sgx3-dcapqvl/quote.bin",
				       "dcap-quotes/sgx3-automata/quote.bin", "dcap-quotes/sgx3-oasis/quote.bin"};
	const char *dir = tu_tmpdir();
	char path[512], outp[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/pck.py", dir);
	tu_write(path, pyscript, strlen(pyscript));
	for (size_t i = 0; i < sizeof(quotes) / sizeof(quotes[0]); i++) {
		size_t len, olen;
		uint8_t *q = tu_read(tu_vector(quotes[i]), &len), *py;
		struct mse_quote pq;
		struct mse_err e = {0};
		BIO *bio;
		X509 *leaf;
		struct mse_pck_info info;
		char mine[256], f[13], p[5];
		size_t off;

		assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), 0);
		bio = BIO_new_mem_buf(pq.cert_data, (int)pq.cert_len);
		leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		assert_non_null(leaf);
		if (mse_pck_from_x509(&info, leaf, &e) != 0)
			fail_msg("%s: %s", e.field, e.msg);
		assert_int_equal(mse_hex_encode(f, sizeof(f), info.fmspc, 6), 0);
		assert_int_equal(mse_hex_encode(p, sizeof(p), info.pceid, 2), 0);
		off = (size_t)snprintf(mine, sizeof(mine), "%s %s %u ", f, p, info.pcesvn);
		for (int c = 0; c < 16; c++)
			off += (size_t)snprintf(mine + off, sizeof(mine) - off, "%s%u", c ? "," : "", info.comp_svn[c]);
		snprintf(outp, sizeof(outp), "%s/out.txt", dir);
		assert_int_equal(tu_sh("%s %s/pck.py %s > %s", tu_python(), dir, tu_vector(quotes[i]), outp), 0);
		py = tu_read(outp, &olen);
		while (olen && (py[olen - 1] == '\n'))
			py[--olen] = 0;
		assert_string_equal(mine, (char *)py);
		assert_true(info.ca == MSE_PCK_CA_PLATFORM || info.ca == MSE_PCK_CA_PROCESSOR);
		free(py);
		X509_free(leaf);
		BIO_free(bio);
		free(q);
	}
	tu_rmtree(dir);
}

static void pck_rejects_malformed(void **state)
{
	struct mse_pck_info info;
	struct mse_err e = {0};
	/* SEQUENCE { SEQUENCE { OID .1.13.1.1, OCTET STRING(2) } }: PPID too short, then missing entries */
	static const uint8_t short_ppid[] = {0x30, 0x12, 0x30, 0x10, 0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf8,
					     0x4d, 0x01, 0x0d, 0x01, 0x01, 0x04, 0x02, 0x00, 0x00};
	static const uint8_t empty[] = {0x30, 0x00};
	static const uint8_t indefinite[] = {0x30, 0x80, 0x00, 0x00};
	static const uint8_t overlong[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0xff};

	(void)state;
	assert_int_equal(mse_pck_parse_ext(&info, short_ppid, sizeof(short_ppid), &e), -1);
	assert_string_equal(e.field, "ppid");
	assert_string_equal(e.step, "pck");
	assert_int_equal(mse_pck_parse_ext(&info, empty, sizeof(empty), &e), -1);
	assert_non_null(strstr(e.msg, "missing"));
	assert_int_equal(mse_pck_parse_ext(&info, indefinite, sizeof(indefinite), &e), -1);
	assert_int_equal(mse_pck_parse_ext(&info, overlong, sizeof(overlong), &e), -1);
	assert_int_equal(mse_pck_parse_ext(&info, NULL, 0, &e), -1);
}

static void jspan_exact_bytes(void **state)
{
	static const char doc[] = " {\"a\" : [1, {\"x\":\"}\"}] ,\"tcbInfo\":{\"k\": \"v\\\"}\" ,\"n\":-1.5e3},"
				  "\"signature\":\"abcd\"} ";
	struct mse_jspan sp;
	struct mse_err e = {0};

	(void)state;
	assert_int_equal(mse_jspan_member(doc, strlen(doc), "tcbInfo", &sp, &e), 0);
	assert_int_equal(sp.len, strlen("{\"k\": \"v\\\"}\" ,\"n\":-1.5e3}"));
	assert_memory_equal(sp.p, "{\"k\": \"v\\\"}\" ,\"n\":-1.5e3}", sp.len);
	assert_int_equal(mse_jspan_member(doc, strlen(doc), "signature", &sp, &e), 0);
	assert_memory_equal(sp.p, "\"abcd\"", sp.len);
	/* nested keys are not top-level members */
	assert_int_equal(mse_jspan_member(doc, strlen(doc), "x", &sp, &e), -1);
	assert_non_null(strstr(e.msg, "missing"));
}

static void jspan_rejects(void **state)
{
	static const char *bad[] = {
		"{\"tcbInfo\":{},\"tcbInfo\":{}}", /* duplicate: which one is signed? */
		"{\"tcbInfo\":{}",                 /* unterminated */
		"{\"tcbInfo\":{}} x",              /* trailing garbage */
		"{\"tcbInfo\":01}",                /* leading zero */
		"{\"tcbInfo\":\"\x01\"}",          /* control character */
		"{\"tcbInfo\":\"\\x\"}",           /* bad escape */
		"{\"tcbInfo\":tru}",               /* bad literal */
		"[\"tcbInfo\"]",                   /* not an object */
		"{\"tcbInfo\" {}}",                /* missing colon */
		"{\"tcbInfo\":{},}",               /* trailing comma */
		"",
	};
	struct mse_jspan sp;
	struct mse_err e = {0};
	char deep[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (mse_jspan_member(bad[i], strlen(bad[i]), "tcbInfo", &sp, &e) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(sp.p);
	}
	/* nesting deeper than the limit */
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"tcbInfo\":", 11);
	assert_int_equal(mse_jspan_member(deep, sizeof(deep), "tcbInfo", &sp, &e), -1);
	assert_int_equal(mse_jspan_member(NULL, 0, "tcbInfo", &sp, &e), -1);
}

static void tcb_time_and_status(void **state)
{
	time_t t;
	char out[32];
	enum mse_tcb_status s;

	(void)state;
	assert_int_equal(mse_tcb_parse_time("2023-06-15T23:55:41Z", &t), 0);
	assert_int_equal((long long)t, 1686873341LL); /* date -u -d 2023-06-15T23:55:41Z +%s */
	mse_tcb_format_time(t, out);
	assert_string_equal(out, "2023-06-15T23:55:41Z");
	assert_int_equal(mse_tcb_parse_time("2023-06-15T23:55:41.123Z", &t), 0);
	assert_int_equal(mse_tcb_parse_time("2023-06-15 23:55:41Z", &t), -1);
	assert_int_equal(mse_tcb_parse_time("2023-13-15T23:55:41Z", &t), -1);
	assert_int_equal(mse_tcb_parse_time("2023-06-15T23:55:41", &t), -1);
	assert_int_equal(mse_tcb_status_parse("ConfigurationAndSWHardeningNeeded", &s), 0);
	assert_int_equal(s, MSE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
	assert_int_equal(mse_tcb_status_parse("uptodate", &s), -1);
	/* QVL convergence rules */
	assert_int_equal(mse_tcb_converge(MSE_TCB_UP_TO_DATE, MSE_TCB_OUT_OF_DATE), MSE_TCB_OUT_OF_DATE);
	assert_int_equal(mse_tcb_converge(MSE_TCB_CONFIGURATION_NEEDED, MSE_TCB_OUT_OF_DATE),
			 MSE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
	assert_int_equal(mse_tcb_converge(MSE_TCB_SW_HARDENING_NEEDED, MSE_TCB_REVOKED), MSE_TCB_REVOKED);
	assert_int_equal(mse_tcb_converge(MSE_TCB_SW_HARDENING_NEEDED, MSE_TCB_UP_TO_DATE), MSE_TCB_SW_HARDENING_NEEDED);
}

static void tcb_info_v2_parses(void **state)
{
	/* TCB info v2 (PCS API v3): component SVNs as sgxtcbcompNNsvn keys. */
	char json[2048];
	size_t off = 0;
	struct mse_tcb_info ti;
	struct mse_pck_info pck = {0};
	struct mse_err e = {0};
	size_t lvl;

	(void)state;
	off += (size_t)snprintf(json + off, sizeof(json) - off,
				"{\"version\":2,\"issueDate\":\"2023-01-01T00:00:00Z\",\"nextUpdate\":\"2023-02-01T00:00:00Z\","
				"\"fmspc\":\"00906ea10000\",\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":12,"
				"\"tcbLevels\":[{\"tcb\":{");
	for (int i = 1; i <= 16; i++)
		off += (size_t)snprintf(json + off, sizeof(json) - off, "\"sgxtcbcomp%02dsvn\":%d,", i, i == 1 ? 5 : 0);
	snprintf(json + off, sizeof(json) - off,
		 "\"pcesvn\":10},\"tcbDate\":\"2022-11-09T00:00:00Z\",\"tcbStatus\":\"OutOfDate\",\"advisoryIDs\":[\"INTEL-SA-1\"]}]}");
	assert_int_equal(mse_tcb_info_parse(&ti, json, strlen(json), &e), 0);
	assert_int_equal(ti.version, 2);
	assert_int_equal(ti.nlevels, 1);
	pck.comp_svn[0] = 4;
	pck.pcesvn = 10;
	assert_int_equal(mse_tcb_select(&ti, &pck, &lvl, &e), -1);
	assert_non_null(strstr(e.msg, "TCB level not supported"));
	pck.comp_svn[0] = 5;
	assert_int_equal(mse_tcb_select(&ti, &pck, &lvl, &e), 0);
	assert_int_equal(ti.levels[lvl].status, MSE_TCB_OUT_OF_DATE);
	assert_string_equal(ti.levels[lvl].advisories, "INTEL-SA-1");
	mse_tcb_info_free(&ti);
	mse_tcb_info_free(&ti);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pck_matches_independent_reading),
		cmocka_unit_test(pck_rejects_malformed),
		cmocka_unit_test(jspan_exact_bytes),
		cmocka_unit_test(jspan_rejects),
		cmocka_unit_test(tcb_time_and_status),
		cmocka_unit_test(tcb_info_v2_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
