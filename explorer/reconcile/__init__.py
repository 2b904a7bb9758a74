"""`explorer reconcile`: the files against OpenAI's own usage and costs."""
