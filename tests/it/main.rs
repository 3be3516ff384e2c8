mod plugin_install;
fn main() {}
