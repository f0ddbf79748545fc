"""The plugin packages under this folder are installed and tested by test_plugin_packages.py;
their own tests run there, against the installed copies, not in this session."""

collect_ignore_glob = ["dixis-carrier-*"]
