"""DynamoDB's part: the embedded moto, its HTTP port for other tools, its in-process transports and the item
engine that answers the functions' item requests first."""
