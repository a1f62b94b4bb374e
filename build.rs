//! Finds the file name of FFmpeg's filter library for this build. benjamin loads it only when
//! it filters (cutting, mixing, title cards): linked, it and the thirty libraries it pulls in
//! were loaded and relocated at every start, a third of a short command's time.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    // ffmpeg-sys-next finds the other FFmpeg libraries through the same pkg-config, so the
    // libavfilter named here belongs to the FFmpeg that benjamin links.
    let major = std::process::Command::new("pkg-config")
        .args(["--modversion", "libavfilter"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.trim().split('.').next().map(str::to_owned))
        .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()));
    let name = match (major, std::env::var("CARGO_CFG_TARGET_OS").as_deref()) {
        (Some(m), Ok("macos")) => format!("libavfilter.{m}.dylib"),
        (Some(m), _) => format!("libavfilter.so.{m}"),
        (None, Ok("macos")) => "libavfilter.dylib".to_owned(),
        (None, _) => "libavfilter.so".to_owned(),
    };
    println!("cargo:rustc-env=BENJAMIN_AVFILTER_LIBRARY={name}");
    embed_corpora();
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        compile_kernels();
    }
}

/// Lists the shipped screenplay corpora (`corpora/<genre>/*.fountain`) for `include_str!`:
/// the screenplay stage fine-tunes on its genre's part without reading the source tree.
fn embed_corpora() {
    println!("cargo:rerun-if-changed=corpora");
    let mut code = String::from("&[\n");
    for genre in ["noir", "scifi", "romance"] {
        let dir = std::path::Path::new("corpora").join(genre);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "fountain"));
        files.sort();
        for file in files {
            let path = std::fs::canonicalize(&file).expect("a corpus file has a path");
            code += &format!(
                "    ({genre:?}, include_str!({:?})),\n",
                path.display().to_string()
            );
        }
    }
    code += "]\n";
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("corpora.rs"), code).expect("OUT_DIR is writable");
}

/// Compiles benjamin's CUDA kernels to PTX with nvcc (`scripts/setup-cuda.sh` installs it),
/// for the GPU `CUDA_COMPUTE_CAP` names (default 90: Hopper, the H100 and H200). The driver
/// loads the PTX at the first launch.
fn compile_kernels() {
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".to_owned());
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_owned());
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for name in ["kernels", "convert"] {
        let source = format!("src/nn/cuda/{name}.cu");
        println!("cargo:rerun-if-changed={source}");
        let status = std::process::Command::new(&nvcc)
            .args([
                "--ptx",
                "-O3",
                "-std=c++17",
                &format!("-arch=sm_{cap}"),
                &source,
                "-o",
            ])
            .arg(out_dir.join(format!("benjamin_{name}.ptx")))
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {nvcc} ({e}): run scripts/setup-cuda.sh and source its env.sh")
            });
        assert!(status.success(), "{nvcc} failed on {source}");
    }
}
