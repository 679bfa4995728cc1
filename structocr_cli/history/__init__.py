"""The local history of balances: where they are stored and what their trend says."""
