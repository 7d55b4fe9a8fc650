// Run-time loading of libcublasLt (search order in cublaslt_loader.h).
#include "cuda/gemm/cublaslt_loader.h"

#include <dlfcn.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/json_string.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

const char* const kSonames[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
const char* const kWheelDirs[] = {"nvidia/cu13/lib", "nvidia/cublas/lib"};

bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string env_or_empty(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v ? std::string(v) : std::string();
}

bool disabled_value(const std::string& v) { return v == "off" || v == "OFF" || v == "none" || v == "0"; }

void add_dir(std::vector<std::string>& out, const std::string& dir) {
  if (dir.empty()) return;
  for (const char* so : kSonames) out.push_back(dir + "/" + so);
}

std::vector<std::string> glob_dirs(const std::string& pattern) {
  std::vector<std::string> r;
  glob_t g;
  if (glob(pattern.c_str(), GLOB_ONLYDIR, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; i++) r.push_back(g.gl_pathv[i]);
  globfree(&g);
  return r;
}

// site-packages of the active virtualenv / conda env (cheap: no process started).
std::vector<std::string> env_site_packages(const EnvLookup& env) {
  std::vector<std::string> r;
  for (const char* var : {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
    const std::string prefix = env_or_empty(env, var);
    if (prefix.empty()) continue;
    for (const std::string& d : glob_dirs(prefix + "/lib/python3*/site-packages")) r.push_back(d);
  }
  return r;
}

// The site-packages directories a Python interpreter reports (one process start, ~30 ms; only when the earlier
// steps found nothing).
std::vector<std::string> python_site_packages(const EnvLookup& env) {
  std::string python = env_or_empty(env, "VREFLECT_PYTHON");
  if (disabled_value(python)) return {};
  if (python.empty()) python = "python3";
  for (char c : python)
    if (c == '\'' || c == '\n') return {};  // the path is quoted below; refuse what would break the quoting
  const std::string cmd = "'" + python +
                          "' -c 'import site,sys; print(chr(10).join(site.getsitepackages()+[site.getusersitepackages()]"
                          "+[p for p in sys.path if p.endswith(\"-packages\")]))' 2>/dev/null";
  std::vector<std::string> r;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return r;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (!s.empty()) r.push_back(s);
  }
  pclose(f);
  return r;
}

template <class F>
bool sym(void* lib, const char* name, F& fn, std::string& missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn && missing.empty()) missing = name;
  return fn != nullptr;
}

// dlopen + every entry point; on failure the library is closed again and `why` says what was wrong.
bool load(const std::string& path, lt::Api& api, std::string& why) {
  dlerror();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    why = e ? e : "dlopen failed";
    return false;
  }
  std::string missing;
  sym(lib, "cublasLtCreate", api.Create, missing);
  sym(lib, "cublasLtDestroy", api.Destroy, missing);
  sym(lib, "cublasLtGetVersion", api.GetVersion, missing);
  sym(lib, "cublasLtMatmulDescCreate", api.MatmulDescCreate, missing);
  sym(lib, "cublasLtMatmulDescDestroy", api.MatmulDescDestroy, missing);
  sym(lib, "cublasLtMatmulDescSetAttribute", api.MatmulDescSetAttribute, missing);
  sym(lib, "cublasLtMatrixLayoutCreate", api.MatrixLayoutCreate, missing);
  sym(lib, "cublasLtMatrixLayoutDestroy", api.MatrixLayoutDestroy, missing);
  sym(lib, "cublasLtMatmulPreferenceCreate", api.MatmulPreferenceCreate, missing);
  sym(lib, "cublasLtMatmulPreferenceDestroy", api.MatmulPreferenceDestroy, missing);
  sym(lib, "cublasLtMatmulPreferenceSetAttribute", api.MatmulPreferenceSetAttribute, missing);
  sym(lib, "cublasLtMatmulAlgoGetHeuristic", api.MatmulAlgoGetHeuristic, missing);
  sym(lib, "cublasLtMatmul", api.Matmul, missing);
  if (!missing.empty()) {
    why = path + " has no " + missing;
    dlclose(lib);
    return false;
  }
  std::string optional;
  sym(lib, "cublasLtGetStatusString", api.GetStatusString, optional);
  return true;
}

std::string version_string(size_t v) {  // cublasLtGetVersion: major * 10000 + minor * 100 + patch
  std::ostringstream o;
  o << v / 10000 << '.' << (v / 100) % 100 << '.' << v % 100;
  return o.str();
}

}  // namespace

std::vector<std::string> cublaslt_candidates(const EnvLookup& env, const std::vector<std::string>& site_packages) {
  std::vector<std::string> out;
  const std::string explicit_path = env_or_empty(env, "VREFLECT_CUBLASLT");
  if (!explicit_path.empty()) {
    if (disabled_value(explicit_path)) return out;
    if (is_dir(explicit_path))
      add_dir(out, explicit_path);
    else
      out.push_back(explicit_path);
    return out;
  }
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    const std::string root = env_or_empty(env, var);
    if (root.empty()) continue;
    add_dir(out, root + "/lib64");
    add_dir(out, root + "/targets/x86_64-linux/lib");
    add_dir(out, root + "/targets/sbsa-linux/lib");
  }
  for (const char* so : kSonames) out.push_back(so);  // the loader's own search
  for (const std::string& sp : site_packages)
    for (const char* wd : kWheelDirs) add_dir(out, sp + "/" + wd);
  return out;
}

CublasLtInfo cublaslt_probe(const EnvLookup& env, bool allow_python, lt::Api* api_out) {
  CublasLtInfo info;
  const std::string explicit_path = env_or_empty(env, "VREFLECT_CUBLASLT");
  if (disabled_value(explicit_path)) {
    info.error = "disabled by VREFLECT_CUBLASLT=" + explicit_path;
    return info;
  }
  lt::Api api{};
  std::string last_why, missing_why;  // a file that failed to load says more than one that does not exist
  auto try_list = [&](const std::vector<std::string>& candidates) {
    for (const std::string& c : candidates) {
      // A full path that does not exist is skipped quietly (dlopen would only say so); sonames always try.
      struct stat st;
      const bool is_path = c.find('/') != std::string::npos;
      if (is_path && stat(c.c_str(), &st) != 0) {
        if (!explicit_path.empty()) missing_why = c + ": no such file";
        continue;
      }
      info.tried.push_back(c);
      std::string why;
      if (load(c, api, why)) {
        info.found = true;
        info.path = c;
        // The loader's search (bare soname): report the file it resolved to.
        Dl_info dl;
        if (!is_path && dladdr(reinterpret_cast<void*>(api.Create), &dl) && dl.dli_fname) info.path = dl.dli_fname;
        info.version = version_string(api.GetVersion());
        return true;
      }
      last_why = why;
    }
    return false;
  };
  std::vector<std::string> seen = cublaslt_candidates(env, env_site_packages(env));
  bool ok = try_list(seen);
  if (!ok && explicit_path.empty() && allow_python) {
    std::vector<std::string> extra;
    for (const std::string& c : cublaslt_candidates(env, python_site_packages(env)))
      if (std::find(seen.begin(), seen.end(), c) == seen.end()) extra.push_back(c);
    ok = try_list(extra);
  }
  if (ok) {
    if (api_out) *api_out = api;
  } else {
    info.error = "libcublasLt (.so.13/.so.12) not found";
    if (!explicit_path.empty())
      info.error += " at VREFLECT_CUBLASLT=" + explicit_path;
    else
      info.error += " in $CUDA_HOME/lib64, the loader path or Python's nvidia wheels";
    if (last_why.empty()) last_why = missing_why;
    if (!last_why.empty()) info.error += " (last error: " + last_why + ")";
    info.error += "; GEMMs use the vreflect kernel";
  }
  return info;
}

namespace {
struct Loaded {
  CublasLtInfo info;
  lt::Api api{};
};
const Loaded& loaded() {
  static Loaded* l = [] {
    auto* r = new Loaded;  // never freed: the library stays loaded for the life of the process
    r->info = cublaslt_probe([](const char* n) { return static_cast<const char*>(std::getenv(n)); }, true, &r->api);
    return r;
  }();
  return *l;
}
}  // namespace

const CublasLtInfo& cublaslt_info() { return loaded().info; }
const lt::Api* cublaslt_api() { return loaded().info.found ? &loaded().api : nullptr; }

std::string cublaslt_info_json(const CublasLtInfo& info) {
  return std::string("{\"found\":") + (info.found ? "true" : "false") + ",\"path\":" + json_string(info.path) +
         ",\"version\":" + json_string(info.version) + ",\"error\":" + json_string(info.error) + "}";
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
