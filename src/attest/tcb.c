/* SPDX-License-Identifier: Apache-2.0 */
/* TCB info / QE identity parsing and evaluation. See tcb.h. */
#include "attest/tcb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <strings.h>

#include "common/hex.h"

static const char *const status_names[MSE_TCB_STATUS_COUNT] = {
	"Unknown",
	"UpToDate",
	"SWHardeningNeeded",
	"ConfigurationNeeded",
	"ConfigurationAndSWHardeningNeeded",
	"OutOfDate",
	"OutOfDateConfigurationNeeded",
	"Revoked",
	"TDRelaunchAdvised",
	"TDRelaunchAdvisedConfigurationNeeded",
};

const char *mse_tcb_status_name(enum mse_tcb_status s)
{
	return (unsigned)s < MSE_TCB_STATUS_COUNT ? status_names[s] : "Unknown";
}

int mse_tcb_status_parse(const char *name, enum mse_tcb_status *out)
{
	for (int i = 1; i < MSE_TCB_STATUS_COUNT; i++)
		if (strcmp(name, status_names[i]) == 0) {
			*out = (enum mse_tcb_status)i;
			return 0;
		}
	return -1;
}

static int num(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int mse_tcb_parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, se;
	size_t n, i = 19;
	time_t t;

	/* RFC 3339 in UTC, as Intel's PCS and the PCCS write issueDate/nextUpdate. */
	if (!s || (n = strlen(s)) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':' || num(s, 4, &y) || num(s + 5, 2, &mo) || num(s + 8, 2, &d) ||
	    num(s + 11, 2, &h) || num(s + 14, 2, &mi) || num(s + 17, 2, &se))
		return -1;
	if (s[i] == '.') {
		if (++i >= n || s[i] < '0' || s[i] > '9')
			return -1;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (!((i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) || strcmp(s + i, "+00:00") == 0))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = t;
	return 0;
}

void mse_tcb_format_time(time_t t, char out[32])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "@%lld", (long long)t);
}

/* ---- small typed getters over jansson, each naming the field on error ---- */

#define JFAIL(err, step, field, ...) (mse_err_step((err), (step)), mse_err_field((err), (field), __VA_ARGS__))

static int get_int(json_t *o, const char *k, long long lo, long long hi, long long *v, const char *step,
		   struct mse_err *err)
{
	json_t *j = json_object_get(o, k);

	if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi)
		return JFAIL(err, step, k, "expected an integer in %lld..%lld", lo, hi);
	*v = json_integer_value(j);
	return 0;
}

static int get_hex(json_t *o, const char *k, uint8_t *out, size_t n, const char *step, struct mse_err *err)
{
	json_t *j = json_object_get(o, k);

	if (!json_is_string(j) ||
	    mse_hex_decode_exact(out, n, json_string_value(j), json_string_length(j)) != 0)
		return JFAIL(err, step, k, "expected %zu hex digits", 2 * n);
	return 0;
}

static int get_time(json_t *o, const char *k, time_t *out, const char *step, struct mse_err *err)
{
	json_t *j = json_object_get(o, k);

	if (!json_is_string(j) || mse_tcb_parse_time(json_string_value(j), out) != 0)
		return JFAIL(err, step, k, "expected a date \"YYYY-MM-DDTHH:MM:SSZ\"");
	return 0;
}

static int get_status(json_t *o, const char *k, enum mse_tcb_status *s, const char *step, struct mse_err *err)
{
	json_t *j = json_object_get(o, k);

	/* The TD relaunch statuses are the verifier's conclusion, never Intel's collateral. */
	if (!json_is_string(j) || mse_tcb_status_parse(json_string_value(j), s) != 0 ||
	    *s >= MSE_TCB_TD_RELAUNCH_ADVISED)
		return JFAIL(err, step, k, "unknown TCB status \"%s\"",
			     json_is_string(j) ? json_string_value(j) : "(not a string)");
	return 0;
}

/* advisoryIDs (optional) → "A,B,C" */
static int get_advisories(json_t *o, char **out, const char *step, struct mse_err *err)
{
	json_t *a = json_object_get(o, "advisoryIDs"), *v;
	size_t i, total = 1;
	char *s;

	*out = NULL;
	if (a && !json_is_array(a))
		return JFAIL(err, step, "advisoryIDs", "expected an array of strings");
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64 ||
		    strpbrk(json_string_value(v), ", \t\n"))
			return JFAIL(err, step, "advisoryIDs", "expected advisory IDs like \"INTEL-SA-00123\"");
		total += json_string_length(v) + 1;
	}
	s = malloc(total);
	if (!s)
		return JFAIL(err, step, "advisoryIDs", "out of memory");
	s[0] = 0;
	json_array_foreach(a, i, v) {
		if (i)
			strcat(s, ",");
		strcat(s, json_string_value(v));
	}
	*out = s;
	return 0;
}

static json_t *load_object(const char *json, size_t len, const char *step, const char *what, struct mse_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);

	if (!j || !json_is_object(j)) {
		json_decref(j);
		JFAIL(err, step, what, "invalid JSON object: %s (line %d, column %d)", j ? "not an object" : je.text,
		      je.line, je.column);
		return NULL;
	}
	return j;
}

static int get_components(json_t *tcb, const char *k, uint8_t out[16], struct mse_err *err)
{
	json_t *comps = json_object_get(tcb, k);
	long long v;

	if (!json_is_array(comps) || json_array_size(comps) != 16)
		return JFAIL(err, "tcb-info", k, "expected an array of 16 components");
	for (size_t i = 0; i < 16; i++) {
		if (get_int(json_array_get(comps, i), "svn", 0, 255, &v, "tcb-info", err))
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int parse_tcb_level(struct mse_tcb_level *L, json_t *lv, int version, int tdx, struct mse_err *err)
{
	json_t *tcb = json_object_get(lv, "tcb");
	long long v;

	if (!json_is_object(tcb))
		return JFAIL(err, "tcb-info", "tcbLevels[].tcb", "expected an object");
	if (version == 3) {
		if (get_components(tcb, "sgxtcbcomponents", L->comp, err) ||
		    (tdx && get_components(tcb, "tdxtcbcomponents", L->tdx_comp, err)))
			return -1;
	} else {
		for (int i = 0; i < 16; i++) {
			char k[24];

			snprintf(k, sizeof(k), "sgxtcbcomp%02dsvn", i + 1);
			if (get_int(tcb, k, 0, 255, &v, "tcb-info", err))
				return -1;
			L->comp[i] = (uint8_t)v;
		}
	}
	if (get_int(tcb, "pcesvn", 0, 65535, &v, "tcb-info", err))
		return -1;
	L->pcesvn = (uint16_t)v;
	if (get_status(lv, "tcbStatus", &L->status, "tcb-info", err) ||
	    get_time(lv, "tcbDate", &L->tcb_date, "tcb-info", err))
		return -1;
	return get_advisories(lv, &L->advisories, "tcb-info", err);
}

/* tdxModule / tdxModuleIdentities[] common fields. */
static int parse_module_id(struct mse_tdx_module *m, json_t *o, const char *what, struct mse_err *err)
{
	if (!json_is_object(o))
		return JFAIL(err, "tcb-info", what, "expected an object");
	return get_hex(o, "mrsigner", m->mrsigner, 48, "tcb-info", err) ||
			       get_hex(o, "attributes", m->attributes, 8, "tcb-info", err) ||
			       get_hex(o, "attributesMask", m->attributes_mask, 8, "tcb-info", err)
		       ? -1
		       : 0;
}

static int parse_tdx_modules(struct mse_tcb_info *out, json_t *j, struct mse_err *err)
{
	json_t *ids = json_object_get(j, "tdxModuleIdentities"), *o, *lv;
	size_t i, k;
	long long v;

	/* TCB info v3 for TDX always carries the base module (PCS API v4, "TCB Info V3"). */
	if (parse_module_id(&out->module, json_object_get(j, "tdxModule"), "tdxModule", err))
		return -1;
	if (!ids)
		return 0;
	if (!json_is_array(ids) || json_array_size(ids) > 256)
		return JFAIL(err, "tcb-info", "tdxModuleIdentities", "expected an array");
	if (json_array_size(ids) == 0)
		return 0;
	out->modules = calloc(json_array_size(ids), sizeof(*out->modules));
	if (!out->modules)
		return JFAIL(err, "tcb-info", "tdxModuleIdentities", "out of memory");
	json_array_foreach(ids, i, o) {
		struct mse_tdx_module *m = &out->modules[i];
		json_t *id = json_object_get(o, "id"), *levels;

		out->nmodules = i + 1;
		if (parse_module_id(m, o, "tdxModuleIdentities[]", err))
			return -1;
		if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) >= sizeof(m->id))
			return JFAIL(err, "tcb-info", "tdxModuleIdentities[].id", "expected a string like \"TDX_01\"");
		strcpy(m->id, json_string_value(id));
		levels = json_object_get(o, "tcbLevels");
		if (!json_is_array(levels) || json_array_size(levels) == 0 || json_array_size(levels) > 4096)
			return JFAIL(err, "tcb-info", "tdxModuleIdentities[].tcbLevels", "expected a non-empty array");
		m->levels = calloc(json_array_size(levels), sizeof(*m->levels));
		if (!m->levels)
			return JFAIL(err, "tcb-info", "tdxModuleIdentities[].tcbLevels", "out of memory");
		json_array_foreach(levels, k, lv) {
			json_t *tcb = json_object_get(lv, "tcb");

			m->nlevels = k + 1;
			if (!json_is_object(tcb))
				return JFAIL(err, "tcb-info", "tdxModuleIdentities[].tcbLevels[].tcb", "expected an object");
			if (get_int(tcb, "isvsvn", 0, 255, &v, "tcb-info", err))
				return -1;
			m->levels[k].isvsvn = (uint8_t)v;
			if (get_status(lv, "tcbStatus", &m->levels[k].status, "tcb-info", err) ||
			    get_time(lv, "tcbDate", &m->levels[k].tcb_date, "tcb-info", err) ||
			    get_advisories(lv, &m->levels[k].advisories, "tcb-info", err))
				return -1;
		}
	}
	return 0;
}

int mse_tcb_info_parse(struct mse_tcb_info *out, const char *json, size_t len, struct mse_err *err)
{
	json_t *j, *levels, *lv;
	long long v;
	size_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	j = load_object(json, len, "tcb-info", "tcbInfo", err);
	if (!j)
		return -1;
	if (get_int(j, "version", 2, 3, &v, "tcb-info", err))
		goto out;
	out->version = (int)v;
	if (out->version == 3) {
		json_t *id = json_object_get(j, "id");

		if (!json_is_string(id) ||
		    (strcmp(json_string_value(id), "SGX") != 0 && strcmp(json_string_value(id), "TDX") != 0)) {
			JFAIL(err, "tcb-info", "id", "expected \"SGX\" or \"TDX\", got \"%s\"",
			      json_is_string(id) ? json_string_value(id) : "(none)");
			goto out;
		}
		strcpy(out->id, json_string_value(id));
		out->tdx = strcmp(out->id, "TDX") == 0;
		if (get_int(j, "tcbType", 0, 0, &v, "tcb-info", err))
			goto out;
		if (out->tdx && parse_tdx_modules(out, j, err))
			goto out;
	}
	if (get_time(j, "issueDate", &out->issue_date, "tcb-info", err) ||
	    get_time(j, "nextUpdate", &out->next_update, "tcb-info", err) ||
	    get_hex(j, "fmspc", out->fmspc, 6, "tcb-info", err) ||
	    get_hex(j, "pceId", out->pceid, 2, "tcb-info", err) ||
	    get_int(j, "tcbEvaluationDataNumber", 0, 0x7fffffff, &v, "tcb-info", err))
		goto out;
	out->eval_num = (int)v;
	levels = json_object_get(j, "tcbLevels");
	if (!json_is_array(levels) || json_array_size(levels) == 0 || json_array_size(levels) > 4096) {
		JFAIL(err, "tcb-info", "tcbLevels", "expected a non-empty array");
		goto out;
	}
	out->levels = calloc(json_array_size(levels), sizeof(*out->levels));
	if (!out->levels) {
		JFAIL(err, "tcb-info", "tcbLevels", "out of memory");
		goto out;
	}
	json_array_foreach(levels, i, lv) {
		out->nlevels = i + 1;
		if (!json_is_object(lv)) {
			JFAIL(err, "tcb-info", "tcbLevels", "expected objects");
			goto out;
		}
		if (parse_tcb_level(&out->levels[i], lv, out->version, out->tdx, err))
			goto out;
	}
	ret = 0;
out:
	json_decref(j);
	if (ret)
		mse_tcb_info_free(out);
	return ret;
}

void mse_tcb_info_free(struct mse_tcb_info *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nlevels; i++)
		free(t->levels[i].advisories);
	free(t->levels);
	for (size_t i = 0; i < t->nmodules; i++) {
		for (size_t k = 0; k < t->modules[i].nlevels; k++)
			free(t->modules[i].levels[k].advisories);
		free(t->modules[i].levels);
	}
	free(t->modules);
	memset(t, 0, sizeof(*t));
}

int mse_qe_identity_parse(struct mse_qe_identity *out, const char *json, size_t len, struct mse_err *err)
{
	json_t *j, *id, *levels, *lv;
	uint8_t b4[4];
	long long v;
	size_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	j = load_object(json, len, "qe-identity", "enclaveIdentity", err);
	if (!j)
		return -1;
	id = json_object_get(j, "id");
	if (get_int(j, "version", 2, 2, &v, "qe-identity", err))
		goto out;
	out->version = 2;
	/* "QE" for SGX quotes, "TD_QE" for TDX: the verifier matches it to the quote. */
	if (!json_is_string(id) ||
	    (strcmp(json_string_value(id), "QE") != 0 && strcmp(json_string_value(id), "TD_QE") != 0)) {
		JFAIL(err, "qe-identity", "id", "expected \"QE\" or \"TD_QE\", got \"%s\"",
		      json_is_string(id) ? json_string_value(id) : "(none)");
		goto out;
	}
	strcpy(out->id, json_string_value(id));
	if (get_time(j, "issueDate", &out->issue_date, "qe-identity", err) ||
	    get_time(j, "nextUpdate", &out->next_update, "qe-identity", err) ||
	    get_int(j, "tcbEvaluationDataNumber", 0, 0x7fffffff, &v, "qe-identity", err))
		goto out;
	out->eval_num = (int)v;
	/* MISCSELECT is written as the big-endian hex of the 32-bit value. */
	if (get_hex(j, "miscselect", b4, 4, "qe-identity", err))
		goto out;
	out->miscselect = (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
	if (get_hex(j, "miscselectMask", b4, 4, "qe-identity", err))
		goto out;
	out->miscselect_mask = (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
	/* ATTRIBUTES are written in report byte order. */
	if (get_hex(j, "attributes", out->attributes, 16, "qe-identity", err) ||
	    get_hex(j, "attributesMask", out->attributes_mask, 16, "qe-identity", err) ||
	    get_hex(j, "mrsigner", out->mrsigner, 32, "qe-identity", err) ||
	    get_int(j, "isvprodid", 0, 65535, &v, "qe-identity", err))
		goto out;
	out->isvprodid = (uint16_t)v;
	levels = json_object_get(j, "tcbLevels");
	if (!json_is_array(levels) || json_array_size(levels) == 0 || json_array_size(levels) > 4096) {
		JFAIL(err, "qe-identity", "tcbLevels", "expected a non-empty array");
		goto out;
	}
	out->levels = calloc(json_array_size(levels), sizeof(*out->levels));
	if (!out->levels) {
		JFAIL(err, "qe-identity", "tcbLevels", "out of memory");
		goto out;
	}
	json_array_foreach(levels, i, lv) {
		json_t *tcb = json_object_get(lv, "tcb");

		out->nlevels = i + 1;
		if (!json_is_object(tcb) || get_int(tcb, "isvsvn", 0, 65535, &v, "qe-identity", err)) {
			if (!json_is_object(tcb))
				JFAIL(err, "qe-identity", "tcbLevels[].tcb", "expected an object");
			goto out;
		}
		out->levels[i].isvsvn = (uint16_t)v;
		if (get_status(lv, "tcbStatus", &out->levels[i].status, "qe-identity", err) ||
		    get_advisories(lv, &out->levels[i].advisories, "qe-identity", err))
			goto out;
	}
	ret = 0;
out:
	json_decref(j);
	if (ret)
		mse_qe_identity_free(out);
	return ret;
}

void mse_qe_identity_free(struct mse_qe_identity *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nlevels; i++)
		free(q->levels[i].advisories);
	free(q->levels);
	memset(q, 0, sizeof(*q));
}

int mse_tcb_select(const struct mse_tcb_info *t, const struct mse_pck_info *pck, size_t *level,
		   struct mse_err *err)
{
	char comps[16 * 4 + 1] = "";

	for (size_t i = 0; i < t->nlevels; i++) {
		const struct mse_tcb_level *L = &t->levels[i];
		int ok = pck->pcesvn >= L->pcesvn;

		for (int c = 0; ok && c < 16; c++)
			ok = pck->comp_svn[c] >= L->comp[c];
		if (ok) {
			*level = i;
			return 0;
		}
	}
	for (int c = 0; c < 16; c++)
		snprintf(comps + strlen(comps), sizeof(comps) - strlen(comps), "%s%u", c ? "," : "",
			 pck->comp_svn[c]);
	mse_err_step(err, "tcb-level");
	return mse_err_field(err, "tcbLevels",
			     "TCB level not supported: no level of the TCB info is at or below the "
			     "platform's (components %s, PCESVN %u)",
			     comps, pck->pcesvn);
}

static void hexs(char *out, size_t size, const uint8_t *b, size_t n)
{
	if (mse_hex_encode(out, size, b, n) != 0)
		out[0] = 0;
}

int mse_qe_identity_match(const struct mse_qe_identity *q, const struct mse_sgx_report *qe,
			  enum mse_tcb_status *status, size_t *level, struct mse_err *err)
{
	char a[65], b[65];
	uint8_t masked[16], want[16];

	if (memcmp(q->mrsigner, qe->mr_signer, 32) != 0) {
		hexs(a, sizeof(a), q->mrsigner, 32);
		hexs(b, sizeof(b), qe->mr_signer, 32);
		mse_err_step(err, "qe-identity");
		return mse_err_expect(err, "qe_report.mrsigner", a, b);
	}
	if (q->isvprodid != qe->isv_prod_id) {
		snprintf(a, sizeof(a), "%u", q->isvprodid);
		snprintf(b, sizeof(b), "%u", qe->isv_prod_id);
		mse_err_step(err, "qe-identity");
		return mse_err_expect(err, "qe_report.isvprodid", a, b);
	}
	if ((qe->misc_select & q->miscselect_mask) != (q->miscselect & q->miscselect_mask)) {
		snprintf(a, sizeof(a), "%08x (mask %08x)", q->miscselect & q->miscselect_mask, q->miscselect_mask);
		snprintf(b, sizeof(b), "%08x", qe->misc_select & q->miscselect_mask);
		mse_err_step(err, "qe-identity");
		return mse_err_expect(err, "qe_report.miscselect", a, b);
	}
	for (int i = 0; i < 16; i++) {
		masked[i] = qe->attributes[i] & q->attributes_mask[i];
		want[i] = q->attributes[i] & q->attributes_mask[i];
	}
	if (memcmp(masked, want, 16) != 0) {
		hexs(a, sizeof(a), want, 16);
		hexs(b, sizeof(b), masked, 16);
		mse_err_step(err, "qe-identity");
		return mse_err_expect(err, "qe_report.attributes (masked)", a, b);
	}
	for (size_t i = 0; i < q->nlevels; i++)
		if (qe->isv_svn >= q->levels[i].isvsvn) {
			*status = q->levels[i].status;
			*level = i;
			return 0;
		}
	*status = MSE_TCB_REVOKED;
	*level = q->nlevels;
	return 0;
}

enum mse_tcb_status mse_tcb_converge(enum mse_tcb_status platform, enum mse_tcb_status qe)
{
	if (qe == MSE_TCB_REVOKED)
		return MSE_TCB_REVOKED;
	if (qe == MSE_TCB_OUT_OF_DATE) {
		switch (platform) {
		case MSE_TCB_UP_TO_DATE:
		case MSE_TCB_SW_HARDENING_NEEDED:
			return MSE_TCB_OUT_OF_DATE;
		case MSE_TCB_CONFIGURATION_NEEDED:
		case MSE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED:
			return MSE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
		default:
			return platform;
		}
	}
	return platform;
}

/* ---- TDX ---- */

static int tdx_comps_ok(const struct mse_tcb_level *L, const uint8_t svn[16])
{
	/* Bytes 0-1 (module SVN, major version) belong to the module identity when the version is set. */
	for (int c = svn[1] ? 2 : 0; c < 16; c++)
		if (svn[c] < L->tdx_comp[c])
			return 0;
	return 1;
}

static void list_u8(char *out, size_t n, const uint8_t *v)
{
	out[0] = 0;
	for (int c = 0; c < 16; c++)
		snprintf(out + strlen(out), n - strlen(out), "%s%u", c ? "," : "", v[c]);
}

int mse_tcb_select_tdx(const struct mse_tcb_info *t, const struct mse_pck_info *pck, const uint8_t tee_tcb_svn[16],
		       size_t *sgx_level, size_t *tdx_level, struct mse_err *err)
{
	char a[16 * 4 + 1], b[16 * 4 + 1];
	int have_sgx = 0;

	for (size_t i = 0; i < t->nlevels; i++) {
		const struct mse_tcb_level *L = &t->levels[i];
		int ok = pck->pcesvn >= L->pcesvn;

		for (int c = 0; ok && c < 16; c++)
			ok = pck->comp_svn[c] >= L->comp[c];
		if (!ok)
			continue;
		if (!have_sgx) {
			have_sgx = 1;
			*sgx_level = i;
		}
		if (tdx_comps_ok(L, tee_tcb_svn)) {
			*tdx_level = i;
			return 0;
		}
	}
	list_u8(a, sizeof(a), pck->comp_svn);
	list_u8(b, sizeof(b), tee_tcb_svn);
	mse_err_step(err, "tcb-level");
	return mse_err_field(err, "tcbLevels",
			     "TCB level not supported: no level of the TCB info is at or below the platform's "
			     "(%s; SGX components %s, PCESVN %u, TEE_TCB_SVN %s%s)",
			     have_sgx ? "the SGX part matches, the TDX components do not" : "no SGX level matches", a,
			     pck->pcesvn, b, tee_tcb_svn[1] ? ", bytes 0-1 judged by the module identity" : "");
}

static const struct mse_tdx_module *find_module(const struct mse_tcb_info *t, uint8_t version)
{
	char want[16];

	snprintf(want, sizeof(want), "TDX_%02X", version);
	for (size_t i = 0; i < t->nmodules; i++)
		if (strcasecmp(t->modules[i].id, want) == 0)
			return &t->modules[i];
	return NULL;
}

int mse_tdx_module_check(const struct mse_tcb_info *t, const struct mse_td_report *td, enum mse_tcb_status *status,
			 const struct mse_tdx_module **mod_out, size_t *level, struct mse_err *err)
{
	const struct mse_tdx_module *m = &t->module;
	uint8_t version = td->tee_tcb_svn[1], isvsvn = td->tee_tcb_svn[0], masked[8];
	char a[97], b[97], id[16];

	*mod_out = NULL;
	*level = 0;
	if (version) {
		m = find_module(t, version);
		if (!m) {
			snprintf(id, sizeof(id), "TDX_%02X", version);
			mse_err_step(err, "tdx-module");
			return mse_err_field(err, "tdxModuleIdentities",
					     "no identity \"%s\" for the TDX module of major version %u (TEE_TCB_SVN[1])",
					     id, version);
		}
		*mod_out = m;
	}
	snprintf(id, sizeof(id), "%s", version ? m->id : "tdxModule");
	if (CRYPTO_memcmp(m->mrsigner, td->mr_signer_seam, 48) != 0) {
		hexs(a, sizeof(a), m->mrsigner, 48);
		hexs(b, sizeof(b), td->mr_signer_seam, 48);
		mse_err_step(err, "tdx-module");
		return mse_err_expect(err, version ? "mrsignerseam (tdxModuleIdentities)" : "mrsignerseam (tdxModule)", a,
				      b);
	}
	for (int i = 0; i < 8; i++)
		masked[i] = td->seam_attributes[i] & m->attributes_mask[i];
	if (memcmp(masked, m->attributes, 8) != 0) {
		hexs(a, sizeof(a), m->attributes, 8);
		hexs(b, sizeof(b), masked, 8);
		mse_err_step(err, "tdx-module");
		return mse_err_expect(err, "seam_attributes (masked)", a, b);
	}
	if (!version) {
		*status = MSE_TCB_UP_TO_DATE;
		return 0;
	}
	for (size_t i = 0; i < m->nlevels; i++)
		if (isvsvn >= m->levels[i].isvsvn) {
			*status = m->levels[i].status;
			*level = i;
			return 0;
		}
	mse_err_step(err, "tdx-module");
	return mse_err_field(err, id, "TCB level not supported: the TDX module's SVN %u is below every level of %s",
			     isvsvn, id);
}

enum mse_tcb_status mse_tdx_converge_module(enum mse_tcb_status tdx, enum mse_tcb_status module)
{
	if (module == MSE_TCB_OUT_OF_DATE) {
		if (tdx == MSE_TCB_UP_TO_DATE || tdx == MSE_TCB_SW_HARDENING_NEEDED)
			return MSE_TCB_OUT_OF_DATE;
		if (tdx == MSE_TCB_CONFIGURATION_NEEDED || tdx == MSE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
			return MSE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	}
	if (module == MSE_TCB_REVOKED)
		return MSE_TCB_REVOKED;
	return tdx;
}

static int config_needed(enum mse_tcb_status s)
{
	return s == MSE_TCB_CONFIGURATION_NEEDED || s == MSE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
	       s == MSE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
	       s == MSE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

int mse_tdx_relaunch(const struct mse_tcb_info *t, const struct mse_td_report *td, enum mse_tcb_status sgx,
		     enum mse_tcb_status tdx, enum mse_tcb_status module, enum mse_tcb_status qe,
		     enum mse_tcb_status *out, struct mse_err *err)
{
	const uint8_t *svn2 = td->tee_tcb_svn2;
	const struct mse_tcb_level *latest;
	int reach;

	*out = tdx;
	if (!td->v15 || t->nlevels == 0)
		return 0;
	if (qe == MSE_TCB_OUT_OF_DATE || qe == MSE_TCB_REVOKED)
		return 0;
	if (sgx != MSE_TCB_UP_TO_DATE && sgx != MSE_TCB_SW_HARDENING_NEEDED && sgx != MSE_TCB_CONFIGURATION_NEEDED &&
	    sgx != MSE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return 0;
	if ((tdx != MSE_TCB_OUT_OF_DATE && tdx != MSE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED) ||
	    module != MSE_TCB_OUT_OF_DATE)
		return 0;
	latest = &t->levels[0]; /* levels are listed newest first */
	if (svn2[1] == 0) {
		reach = svn2[0] >= latest->tdx_comp[0] && svn2[2] >= latest->tdx_comp[2];
	} else {
		const struct mse_tdx_module *m = find_module(t, svn2[1]);

		if (!m) {
			mse_err_step(err, "tdx-module");
			return mse_err_field(err, "tdxModuleIdentities",
					     "no identity \"TDX_%02X\" for the module a relaunch would get "
					     "(TEE_TCB_SVN2[1])",
					     svn2[1]);
		}
		reach = m->nlevels && svn2[0] >= m->levels[0].isvsvn && svn2[2] >= latest->tdx_comp[2];
	}
	if (reach)
		*out = config_needed(sgx) || config_needed(tdx) ? MSE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
							       : MSE_TCB_TD_RELAUNCH_ADVISED;
	return 0;
}
