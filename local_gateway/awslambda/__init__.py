"""Lambda's part: running the functions with their timeout (the invoker), their in-process poster, the
Invoke API, and the environment they get."""
