"""Services driven from another language with nothing but protos/."""
