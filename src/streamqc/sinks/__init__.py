"""Sinks: where events go after detection. The journal comes first: nothing reported is lost."""
