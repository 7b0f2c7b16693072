"""The miniapps service: third-party mini-apps (registry, bundles, review pipeline, discovery)."""
