"""What every model role shares: the Hugging Face Hub and offline rules."""
