"""Names of what a finished trial leaves behind, in its folder and in its MLflow run alike."""

CONFIG_ARTIFACT = "config.json"             # the resolved TrainConfig
MODEL_ARTIFACT_DIR = "model"                # save_pretrained: safetensors weights, config, tokenizer
PREDICTIONS_ARTIFACT = "predictions/test_predictions.csv"  # index,label,prediction,prob_positive
LABELS = ("negative", "positive")           # class 0, class 1: in the saved config's id2label
RESULT_FILE = "result.json"                 # key, name, run_id, final metrics, history: marks "done"
