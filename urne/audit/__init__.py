"""What an auditor runs: re-checking a published result from its public documents."""
