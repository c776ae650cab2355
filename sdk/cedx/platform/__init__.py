"""The reference platform: implements the generated reporting-server stub (cedx serve platform)."""
