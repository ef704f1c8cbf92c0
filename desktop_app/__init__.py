"""PneumoScan desktop app (clinic side): PySide6 + onnxruntime; never imports torch, mlflow, airflow or hub."""
