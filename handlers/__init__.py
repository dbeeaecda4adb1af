"""One module per Lambda function; each `handler(event, context)` is a thin adapter over `shared`."""
