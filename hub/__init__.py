"""PneumoScan hub: data, training, evaluation and tracking (torch + mlflow side)."""
