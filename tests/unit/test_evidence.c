/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node/evidence: rebuilding MSE's own evidence.json from its parts gives back
 * the same document (compared by Python's json module, field by field).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operator/evidence.h"

static const char split_py[] =
	"import base64, json, sys\n"
	"from cryptography import x509\n"
	"from cryptography.hazmat.primitives.serialization import Encoding\n"
	"ev, out = sys.argv[1], sys.argv[2]\n"
	"d = json.load(open(ev))\n"
	"def w(name, data):\n"
	"    open(out + '/' + name, 'wb').write(data)\n"
	"w('root_ca_crl.der', x509.load_pem_x509_crl(d['root_ca_crl'].encode()).public_bytes(Encoding.DER))\n"
	"w('pck_crl.der', x509.load_pem_x509_crl(d['pck_platform_crl'].encode()).public_bytes(Encoding.DER))\n"
	"w('tcb_info.json', bytes.fromhex(base64.b64decode(d['tcb_info']).decode().strip()))\n"
	"w('qe_identity.json', base64.b64decode(d['qe_identity']))\n"
	"w('tcb_info_issuer_chain.pem', d['tcb_cert'].encode())\n"
	"w('ratls.pem', d['ratls_certificate'].encode())\n"
	"w('signer.pem', d['signer_pk'].encode())\n"
	"a = d['input_args']\n"
	"w('args', '\\n'.join([a['subject'], a['subject_alternative_name'], str(a['expiration_date']),\n"
	"                     str(a['size']), a['app_id'], a['application']]).encode())\n";

static const char compare_py[] =
	"import json, sys\n"
	"a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))\n"
	"for k in sorted(set(a) | set(b)):\n"
	"    if a.get(k) != b.get(k):\n"
	"        print('differs:', k); sys.exit(1)\n";

static char *slurp(const char *dir, const char *name)
{
	char path[512];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return (char *)tu_read(path, &len);
}

static void rebuilds_mse_evidence_exactly(void **state)
{
	const char *dir = tu_tmpdir();
	char path[512], *args, *ratls, *signer, *json = NULL, *line[6], *save = NULL;
	struct mse_err err = {0};
	struct mse_evidence_args a;

	(void)state;
	snprintf(path, sizeof(path), "%s/split.py", dir);
	tu_write(path, split_py, strlen(split_py));
	assert_int_equal(tu_sh("%s %s '%s' %s", tu_python(), path, tu_vector("mse-evidence/evidence.json"), dir), 0);
	args = slurp(dir, "args");
	ratls = slurp(dir, "ratls.pem");
	signer = slurp(dir, "signer.pem");
	line[0] = strtok_r(args, "\n", &save);
	for (int i = 1; i < 6; i++)
		line[i] = strtok_r(NULL, "\n", &save);
	a.subject = line[0];
	a.san = line[1];
	a.expiration = strtoll(line[2], NULL, 10);
	a.size_mb = (uint32_t)strtoul(line[3], NULL, 10);
	a.app_id = line[4];
	a.application = line[5];
	assert_int_equal(mse_evidence_build(&a, ratls, dir, signer, &json, &err), 0);
	snprintf(path, sizeof(path), "%s/ours.json", dir);
	tu_write(path, json, strlen(json));
	snprintf(path, sizeof(path), "%s/compare.py", dir);
	tu_write(path, compare_py, strlen(compare_py));
	assert_int_equal(tu_sh("%s %s '%s' %s/ours.json", tu_python(), path,
			       tu_vector("mse-evidence/evidence.json"), dir),
			 0);
	free(json);
	/* Missing collateral names the file. */
	snprintf(path, sizeof(path), "%s/pck_crl.der", dir);
	remove(path);
	assert_int_equal(mse_evidence_build(&a, ratls, dir, signer, &json, &err), -1);
	assert_non_null(strstr(err.field, "pck_crl.der"));
	/* A corrupt CRL is named too. */
	tu_write(path, "garbage", 7);
	assert_int_equal(mse_evidence_build(&a, ratls, dir, signer, &json, &err), -1);
	assert_string_equal(err.field, "pck_crl.der");
	free(args);
	free(ratls);
	free(signer);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rebuilds_mse_evidence_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
