/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded interpreter. Locking: Python objects only with the GIL held;
 * the host releases it at the end of mse_pyhost_start and takes it back in
 * mse_pyhost_detect and mse_pyhost_free (main thread).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "enclave/pyhost.h"

#include <stdlib.h>
#include <string.h>

#include "config/appspec.h"
#include "enclave/sandbox.h"

struct mse_pyhost {
	PyObject *app;
	PyThreadState *main_ts;
};

/* traceback.format_exception, fetched once (GIL held to use it). */
static PyObject *g_format_exception;

int mse_pyhost_check_spec(const char *spec, struct mse_err *err)
{
	struct mse_appspec as;

	if (mse_appspec_parse(spec, &as, err) != 0) {
		if (err)
			snprintf(err->field, sizeof(err->field), "app");
		return -1;
	}
	return 0;
}

static const char *const iface_names[] = {"auto", "wsgi", "asgi3", "asgi2"};

const char *mse_pyhost_iface_name(enum mse_pyhost_iface i)
{
	return (unsigned)i < sizeof(iface_names) / sizeof(iface_names[0]) ? iface_names[i] : "?";
}

int mse_pyhost_iface_parse(const char *name, enum mse_pyhost_iface *out, int *asgi_only,
			   struct mse_err *err)
{
	*asgi_only = 0;
	if (name && strcmp(name, "asgi") == 0) {
		*out = MSE_IFACE_AUTO;
		*asgi_only = 1;
		return 0;
	}
	for (size_t i = 0; name && i < sizeof(iface_names) / sizeof(iface_names[0]); i++)
		if (strcmp(name, iface_names[i]) == 0) {
			*out = (enum mse_pyhost_iface)i;
			return 0;
		}
	return mse_err_expect(err, "app_interface", "one of auto, wsgi, asgi, asgi3, asgi2",
			      name ? name : "(none)");
}

char *mse_pyhost_traceback(void)
{
	PyObject *type, *value, *tb, *lines = NULL, *sep = NULL, *text = NULL;
	const char *s;
	char *out = NULL;

	PyErr_Fetch(&type, &value, &tb);
	if (!type)
		return NULL;
	PyErr_NormalizeException(&type, &value, &tb);
	if (tb && value)
		PyException_SetTraceback(value, tb);
	if (g_format_exception)
		lines = PyObject_CallFunctionObjArgs(g_format_exception, type,
						     value ? value : Py_None, tb ? tb : Py_None,
						     NULL);
	if (lines) {
		sep = PyUnicode_FromString("");
		if (sep)
			text = PyUnicode_Join(sep, lines);
	}
	if (!text) {
		PyErr_Clear();
		text = value ? PyObject_Repr(value) : NULL;
	}
	if (text && (s = PyUnicode_AsUTF8(text)) != NULL)
		out = strdup(s);
	PyErr_Clear();
	Py_XDECREF(text);
	Py_XDECREF(sep);
	Py_XDECREF(lines);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	return out;
}

void mse_pyhost_last_line(const char *tb, const char **line, int *len)
{
	const char *last;

	if (!tb) {
		*line = "unknown error";
		*len = (int)strlen(*line);
		return;
	}
	last = tb + strlen(tb);
	while (last > tb && last[-1] == '\n')
		last--;
	while (last > tb && last[-1] != '\n')
		last--;
	*line = last;
	*len = (int)strcspn(last, "\n");
}

void mse_pyhost_log_lines(enum mse_log_level lvl, const char *prefix, const char *text)
{
	const char *p = text;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		mse_log(lvl, "%s%.*s", prefix, n, p);
		p = nl ? nl + 1 : NULL;
	}
}

static int pystatus_err(PyStatus st, struct mse_err *err, const char *what)
{
	return mse_err_set(err, "%s: %s%s%s", what, st.func ? st.func : "",
			   st.func ? ": " : "", st.err_msg ? st.err_msg : "failed");
}

static int start_python(struct mse_err *err)
{
	PyPreConfig pre;
	PyConfig c;
	PyStatus st;
	char *argv[] = {(char *)"mse", NULL};

	PyPreConfig_InitIsolatedConfig(&pre);
	/* The enclave has no locale: UTF-8 everywhere (PEP 540). */
	pre.utf8_mode = 1;
	st = Py_PreInitialize(&pre);
	if (PyStatus_Exception(st))
		return pystatus_err(st, err, "python pre-initialisation");
	/* Isolated: no PYTHON* variables, no user site, no current directory on sys.path. */
	PyConfig_InitIsolatedConfig(&c);
	c.install_signal_handlers = 0; /* the server owns SIGTERM/SIGINT */
	c.write_bytecode = 0;	       /* MODULE_PATH may be read-only or encrypted */
	c.buffered_stdio = 0;	       /* print() reaches the log at once */
	c.parse_argv = 0;
	c.safe_path = 1;
	c.site_import = 1; /* Debian's site adds /usr/lib/python3/dist-packages (Flask) */
	/*
	 * Debian's libpython3.11 lives under /usr. Saying so keeps getpath
	 * from deriving a prefix from our binary's location or PATH (where a
	 * pyenv python may be found first).
	 */
	st = PyConfig_SetBytesString(&c, &c.home, "/usr");
	if (!PyStatus_Exception(st))
		st = PyConfig_SetBytesArgv(&c, 1, argv);
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&c);
	PyConfig_Clear(&c);
	if (PyStatus_Exception(st))
		return pystatus_err(st, err, "python initialisation");
	return 0;
}

static int setup(const struct mse_pyhost_config *cfg, struct mse_err *err)
{
	PyObject *mod, *sys_path;

	mod = PyImport_ImportModule("traceback");
	if (mod) {
		g_format_exception = PyObject_GetAttrString(mod, "format_exception");
		Py_DECREF(mod);
	}
	if (!g_format_exception)
		goto pyfail;
	if (cfg->module_path) {
		PyObject *p = PyUnicode_DecodeFSDefault(cfg->module_path);

		sys_path = PySys_GetObject("path"); /* borrowed */
		if (!p || !sys_path || PyList_Insert(sys_path, 0, p) != 0) {
			Py_XDECREF(p);
			goto pyfail;
		}
		Py_DECREF(p);
	}
	return 0;
pyfail: {
	char *tb = mse_pyhost_traceback();

	mse_err_set(err, "python setup failed: %s", tb ? tb : "unknown error");
	free(tb);
	return -1;
}
}

/* Imports module:attr.attr. Logs the traceback on failure. */
/*
 * A factory, "module:create_app(ARGS)" (config/appspec.h), is called with
 * its arguments, which are parsed by ast and evaluated only by
 * ast.literal_eval: never code.
 */
static const char call_factory_src[] =
	"def call_factory(f, call):\n"
	"    import ast\n"
	"    tree = ast.parse('f' + call, mode='eval').body\n"
	"    args = [ast.literal_eval(a) for a in tree.args]\n"
	"    kw = {k.arg: ast.literal_eval(k.value) for k in tree.keywords}\n"
	"    return f(*args, **kw)\n";

static PyObject *call_factory(PyObject *f, const char *call)
{
	PyObject *ns = PyDict_New(), *rv = NULL, *app = NULL;

	if (ns && PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) == 0 &&
	    (rv = PyRun_String(call_factory_src, Py_file_input, ns, ns)) != NULL)
		app = PyObject_CallFunction(PyDict_GetItemString(ns, "call_factory"), "Os", f, call);
	Py_XDECREF(rv);
	Py_XDECREF(ns);
	return app;
}

static PyObject *import_app(const char *spec, struct mse_err *err)
{
	char *copy = strdup(spec), *attr, *save = NULL, *tok;
	struct mse_appspec as;
	PyObject *obj;

	if (!copy) {
		mse_err_set(err, "out of memory");
		return NULL;
	}
	if (mse_appspec_parse(spec, &as, err) != 0) {
		free(copy);
		return NULL;
	}
	copy[as.module_len] = '\0';
	attr = copy + as.attr_off;
	attr[as.attr_len] = '\0';
	obj = PyImport_ImportModule(copy);
	for (tok = strtok_r(attr, ".", &save); obj && tok; tok = strtok_r(NULL, ".", &save))
		Py_SETREF(obj, PyObject_GetAttrString(obj, tok));
	if (!obj) {
		char *tb = mse_pyhost_traceback();
		const char *last;
		int n;

		mse_pyhost_log_lines(MSE_LOG_ERROR, "app: ", tb ? tb : "(no traceback)");
		mse_pyhost_last_line(tb, &last, &n);
		mse_err_field(err, "app", "cannot import %s: %.*s", spec, n, last);
		free(tb);
	} else if (!PyCallable_Check(obj)) {
		mse_err_field(err, "app", "%s is a %s, not a callable WSGI or ASGI app", spec,
			      Py_TYPE(obj)->tp_name);
		Py_CLEAR(obj);
	} else if (as.call) {
		PyObject *app = call_factory(obj, spec + as.call_off);

		Py_SETREF(obj, app);
		if (!obj) {
			char *tb = mse_pyhost_traceback();
			const char *last;
			int n;

			mse_pyhost_log_lines(MSE_LOG_ERROR, "app: ", tb ? tb : "(no traceback)");
			mse_pyhost_last_line(tb, &last, &n);
			mse_err_field(err, "app", "cannot create the app with %s: %.*s", spec, n, last);
			free(tb);
		} else if (!PyCallable_Check(obj)) {
			mse_err_field(err, "app", "%s returned a %s, not a WSGI or ASGI app", spec,
				      Py_TYPE(obj)->tp_name);
			Py_CLEAR(obj);
		}
	}
	free(copy);
	return obj;
}

int mse_pyhost_start(const struct mse_pyhost_config *cfg, struct mse_pyhost **out,
		     struct mse_err *err)
{
	struct mse_pyhost *h;

	*out = NULL;
	if (mse_pyhost_check_spec(cfg->app, err) != 0)
		return -1;
	if (Py_IsInitialized())
		return mse_err_set(err, "Python is already initialised in this process");
	if (cfg->deny_subprocess && mse_sandbox_python_hook(err) != 0)
		return -1;
	h = calloc(1, sizeof(*h));
	if (!h)
		return mse_err_set(err, "out of memory");
	if (start_python(err) != 0) {
		free(h);
		return -1;
	}
	if (setup(cfg, err) != 0 || !(h->app = import_app(cfg->app, err))) {
		/* Keep the interpreter (it cannot be restarted); release the GIL. */
		h->main_ts = PyEval_SaveThread();
		mse_err_step(err, "import");
		mse_pyhost_free(h);
		return -1;
	}
	h->main_ts = PyEval_SaveThread();
	*out = h;
	return 0;
}

/*
 * What the app object is, in Python: the same rules as uvicorn's
 * (uvicorn/config.py) and asgiref's guarantee_single_callable, plus the
 * WSGI case. Returns (kind, description): kind "asgi3", "asgi2", "wsgi" or
 * "" when the object fits none; the description says what was found.
 */
static const char detect_src[] =
	"import asyncio, inspect\n"
	"def _params(f):\n"
	"    try:\n"
	"        sig = inspect.signature(f)\n"
	"    except (TypeError, ValueError):\n"
	"        return None\n"
	"    n = 0\n"
	"    for p in sig.parameters.values():\n"
	"        if p.kind in (p.VAR_POSITIONAL,):\n"
	"            return None\n"
	"        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:\n"
	"            n += 1\n"
	"    return n\n"
	"def detect(app):\n"
	"    what = type(app).__name__\n"
	"    if inspect.isclass(app):\n"
	"        n = _params(app)\n"
	"        if hasattr(app, '__await__'):\n"
	"            return 'asgi3', 'class ' + app.__name__\n"
	"        if n == 1 and asyncio.iscoroutinefunction(getattr(app, '__call__', None)):\n"
	"            return 'asgi2', 'class ' + app.__name__\n"
	"        if n == 2:\n"
	"            return 'wsgi', 'class ' + app.__name__\n"
	"        return '', 'a class %s whose constructor takes %s arguments' % (app.__name__, n)\n"
	"    if inspect.isfunction(app) or inspect.ismethod(app):\n"
	"        call = app\n"
	"    else:\n"
	"        call = getattr(app, '__call__', None)\n"
	"    n = _params(call)\n"
	"    co = asyncio.iscoroutinefunction(call) or inspect.iscoroutinefunction(call)\n"
	"    if co and n in (3, None):\n"
	"        return 'asgi3', 'an async callable (%s) of (scope, receive, send)' % what\n"
	"    if co:\n"
	"        return '', 'an async callable (%s) taking %d arguments, not (scope, receive, send)' % (what, n)\n"
	"    if n == 2:\n"
	"        return 'wsgi', 'a callable (%s) of (environ, start_response)' % what\n"
	"    if n == 1:\n"
	"        return 'asgi2', 'a callable (%s) of (scope), an ASGI 2 double callable' % what\n"
	"    if n == 3:\n"
	"        return 'asgi3', 'a callable (%s) of (scope, receive, send), not async' % what\n"
	"    if n is None:\n"
	"        return '?', 'a callable (%s) whose parameters cannot be read' % what\n"
	"    if n == 0 and inspect.isfunction(app):\n"
	"        return '', 'a function taking no arguments (an app factory? call it: \"%s:%s()\")' % (app.__module__, app.__name__)\n"
	"    return '', 'a callable (%s) taking %d arguments' % (what, n)\n";

static int kind_of(const char *s, enum mse_pyhost_iface *k)
{
	if (strcmp(s, "wsgi") == 0)
		*k = MSE_IFACE_WSGI;
	else if (strcmp(s, "asgi3") == 0)
		*k = MSE_IFACE_ASGI3;
	else if (strcmp(s, "asgi2") == 0)
		*k = MSE_IFACE_ASGI2;
	else
		return -1;
	return 0;
}

int mse_pyhost_detect(struct mse_pyhost *h, enum mse_pyhost_iface want, int asgi_only,
		      enum mse_pyhost_iface *out, struct mse_err *err)
{
	PyObject *ns = NULL, *rv = NULL, *res = NULL;
	const char *kind = NULL, *descr = NULL;
	enum mse_pyhost_iface found = MSE_IFACE_AUTO;
	int rc = -1;

	PyEval_RestoreThread(h->main_ts);
	ns = PyDict_New();
	if (!ns || PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) != 0)
		goto pyfail;
	rv = PyRun_String(detect_src, Py_file_input, ns, ns);
	if (!rv)
		goto pyfail;
	res = PyObject_CallFunctionObjArgs(PyDict_GetItemString(ns, "detect"), h->app, NULL);
	if (!res || !PyArg_ParseTuple(res, "ss", &kind, &descr))
		goto pyfail;
	if (kind_of(kind, &found) != 0)
		found = MSE_IFACE_AUTO;
	if (want != MSE_IFACE_AUTO) {
		/* Explicit: trusted unless the object plainly is something else. */
		if (found != MSE_IFACE_AUTO && found != want &&
		    !(want != MSE_IFACE_WSGI && found != MSE_IFACE_WSGI)) {
			mse_err_field(err, "app_interface", "%s was asked for, but the app is %s (%s)",
				      mse_pyhost_iface_name(want), descr,
				      mse_pyhost_iface_name(found));
			goto out;
		}
		*out = want;
	} else if (found == MSE_IFACE_AUTO || (asgi_only && found == MSE_IFACE_WSGI)) {
		mse_err_field(err, "app",
			      "the app is neither a WSGI app (environ, start_response) nor an ASGI "
			      "app (async (scope, receive, send), or an ASGI 2 (scope) double "
			      "callable): found %s%s",
			      descr, kind[0] == '?' ? "; say which in mse.toml's app_interface" : "");
		goto out;
	} else {
		*out = found;
	}
	mse_info("app interface: %s (%s)", mse_pyhost_iface_name(*out), descr);
	rc = 0;
	goto out;
pyfail: {
	char *tb = mse_pyhost_traceback();
	const char *last;
	int n;

	mse_pyhost_last_line(tb, &last, &n);
	mse_err_field(err, "app", "cannot inspect the app: %.*s", n, last);
	free(tb);
}
out:
	Py_XDECREF(res);
	Py_XDECREF(rv);
	Py_XDECREF(ns);
	h->main_ts = PyEval_SaveThread();
	return rc;
}

void *mse_pyhost_app(const struct mse_pyhost *h)
{
	return h->app;
}

void *mse_pyhost_main_ts(const struct mse_pyhost *h)
{
	return h->main_ts;
}

void mse_pyhost_free(struct mse_pyhost *h)
{
	if (!h)
		return;
	PyEval_RestoreThread(h->main_ts);
	Py_CLEAR(h->app);
	Py_CLEAR(g_format_exception);
	if (Py_FinalizeEx() != 0)
		mse_warn("python: errors while finalising (flushing stdout/stderr)");
	free(h);
}
