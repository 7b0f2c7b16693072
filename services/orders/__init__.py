"""The orders service: a user's purchases, the checkout saga and its reconciler."""
