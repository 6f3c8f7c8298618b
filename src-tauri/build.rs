fn main() {
    // The window embeds the built UI (`npm run --prefix ui build`). Before the first UI build, a
    // placeholder page lets the crate compile (the engine's tests do not need the UI).
    let dist = std::path::Path::new("../ui/dist");
    if !dist.join("index.html").exists() {
        std::fs::create_dir_all(dist).expect("create ui/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><meta charset=utf-8><title>Syncmon</title>\
             <p>The UI is not built yet: run <code>npm ci --prefix ui &amp;&amp; npm run --prefix ui build</code>, then rebuild.</p>",
        )
        .expect("write the placeholder ui/dist/index.html");
    }
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(&["rpc"]))).expect("tauri-build");
}
