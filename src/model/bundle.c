#include "model/bundle.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static bool has_suffix(const char *s, const char *x) {
    size_t ns = strlen(s), nx = strlen(x);
    return ns >= nx && !strcmp(s + ns - nx, x);
}

static void join(char *out, const char *dir, const char *name) {
    snprintf(out, XS_PATH_MAX, "%s/%s", dir, name);
}

/* LM weight file names in order of preference: what Kyutai's repos ship. */
static const char *k_lm_names[] = {"model.safetensors", "model.q8.gguf", "model.q8.safetensors",
                                   "model.q4.gguf", "model.bf16.safetensors", "model.gguf", NULL};

xs_status xs_bundle_from_dir(const char *dir, xs_bundle *b) {
    if (!is_dir(dir)) return xs_error(XS_ERR_NOT_FOUND, "%s: not a readable model folder", dir);
    memset(b, 0, sizeof *b);
    snprintf(b->dir, sizeof b->dir, "%s", dir);
    char p[XS_PATH_MAX];
    for (int i = 0; k_lm_names[i]; i++) {
        join(p, dir, k_lm_names[i]);
        if (is_file(p)) { snprintf(b->lm, sizeof b->lm, "%s", p); break; }
    }
    join(p, dir, "config.json");
    if (is_file(p)) snprintf(b->lm_config, sizeof b->lm_config, "%s", p);
    join(p, dir, "mimi_config.json");
    if (is_file(p)) snprintf(b->mimi_config, sizeof b->mimi_config, "%s", p);
    DIR *d = opendir(dir);
    if (!d) return xs_error(XS_ERR_IO, "%s: cannot list folder", dir);
    struct dirent *e;
    /* Sorted choice is not needed: a snapshot has one Mimi and one tokenizer;
     * prefer the released Mimi name when several match. */
    while ((e = readdir(d))) {
        join(p, dir, e->d_name);
        if (!is_file(p)) continue;
        if (has_prefix(e->d_name, "tokenizer-") && has_suffix(e->d_name, ".safetensors")) {
            if (!b->mimi[0] || strstr(e->d_name, "e351c8d8"))
                snprintf(b->mimi, sizeof b->mimi, "%s", p);
        } else if (has_prefix(e->d_name, "tokenizer_spm") && has_suffix(e->d_name, ".model")) {
            snprintf(b->tokenizer, sizeof b->tokenizer, "%s", p);
        }
    }
    closedir(d);
    return XS_OK;
}

static xs_status hub_dir(char *out, size_t n) {
    const char *v = getenv("HF_HUB_CACHE");
    if (v && *v) { snprintf(out, n, "%s", v); return XS_OK; }
    v = getenv("HF_HOME");
    if (v && *v) { snprintf(out, n, "%s/hub", v); return XS_OK; }
    v = getenv("HOME");
    if (!v || !*v) return xs_error(XS_ERR_NOT_FOUND, "no HF_HUB_CACHE, HF_HOME or HOME set");
    snprintf(out, n, "%s/.cache/huggingface/hub", v);
    return XS_OK;
}

/* Newest (by mtime) subfolder of snapdir into out. */
static bool newest_subdir(const char *snapdir, char *out, size_t n) {
    DIR *d = opendir(snapdir);
    if (!d) return false;
    struct dirent *e;
    time_t best = 0;
    bool found = false;
    char p[XS_PATH_MAX];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        join(p, snapdir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (!found || st.st_mtime > best)) {
            best = st.st_mtime;
            snprintf(out, n, "%s", p);
            found = true;
        }
    }
    closedir(d);
    return found;
}

xs_status xs_hf_snapshot_dir(const char *repo, char *out, size_t n) {
    const char *slash = strchr(repo, '/');
    if (!slash || slash == repo || !slash[1] || strchr(slash + 1, '/'))
        return xs_error(XS_ERR_ARG, "--hf-repo '%s': expected OWNER/NAME, e.g. kyutai/moshiko-candle-q8", repo);
    char hub[XS_PATH_MAX], base[XS_PATH_MAX], p[XS_PATH_MAX];
    XS_TRY(hub_dir(hub, sizeof hub));
    snprintf(base, sizeof base, "%s/models--%.*s--%s", hub, (int)(slash - repo), repo, slash + 1);
    if (!is_dir(base))
        return xs_error(XS_ERR_NOT_FOUND, "%s is not in the local Hugging Face cache (%s); download it "
                        "first, e.g. `huggingface-cli download %s`", repo, hub, repo);
    snprintf(p, sizeof p, "%s/refs/main", base);
    FILE *f = fopen(p, "r");
    if (f) {
        char rev[128] = "";
        if (fgets(rev, sizeof rev, f)) rev[strcspn(rev, "\r\n")] = 0;
        fclose(f);
        snprintf(p, sizeof p, "%s/snapshots/%s", base, rev);
        if (rev[0] && is_dir(p)) { snprintf(out, n, "%s", p); return XS_OK; }
    }
    snprintf(p, sizeof p, "%s/snapshots", base);
    if (newest_subdir(p, out, n)) return XS_OK;
    return xs_error(XS_ERR_NOT_FOUND, "%s: no snapshot in %s", repo, base);
}

xs_status xs_hf_find_moshi(char *out, size_t n) {
    char hub[XS_PATH_MAX];
    if (hub_dir(hub, sizeof hub) != XS_OK) return XS_ERR_NOT_FOUND;
    DIR *d = opendir(hub);
    if (!d) return xs_error(XS_ERR_NOT_FOUND, "no Hugging Face cache at %s", hub);
    struct dirent *e;
    xs_status rc = xs_error(XS_ERR_NOT_FOUND, "no kyutai/moshi* snapshot in %s", hub);
    while ((e = readdir(d))) {
        if (!has_prefix(e->d_name, "models--kyutai--mosh")) continue;
        char repo[512], snap[XS_PATH_MAX];
        snprintf(repo, sizeof repo, "kyutai/%s", e->d_name + strlen("models--kyutai--"));
        if (xs_hf_snapshot_dir(repo, snap, sizeof snap) != XS_OK) continue;
        xs_bundle b;
        if (xs_bundle_from_dir(snap, &b) == XS_OK && b.lm[0] && b.mimi[0]) {
            snprintf(out, n, "%s", snap);
            rc = XS_OK;
            break;
        }
    }
    closedir(d);
    return rc;
}

xs_status xs_bundle_check(const xs_bundle *b, bool need_lm, bool need_mimi, bool need_tokenizer) {
    const char *where = b->dir[0] ? b->dir : "the given files";
    if (need_lm && !b->lm[0])
        return xs_error(XS_ERR_NOT_FOUND, "%s: no LM weights (model.safetensors, model.q8.gguf or "
                        "model.q8.safetensors); give --lm FILE", where);
    if (need_mimi && !b->mimi[0])
        return xs_error(XS_ERR_NOT_FOUND, "%s: no Mimi weights (tokenizer-*.safetensors); give --mimi FILE", where);
    if (need_tokenizer && !b->tokenizer[0])
        return xs_error(XS_ERR_NOT_FOUND, "%s: no text tokenizer (tokenizer_spm_*.model); give --tokenizer FILE", where);
    return XS_OK;
}
