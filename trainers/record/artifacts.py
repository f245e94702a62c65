"""Names of what a finished trial leaves behind, in its folder and in its MLflow run alike."""

CONFIG_ARTIFACT = "config.json"             # the resolved TrainConfig
MODEL_ARTIFACT_DIR = "model"                # save_pretrained: safetensors weights, config, tokenizer
PREDICTIONS_ARTIFACT = "predictions/test_predictions.csv"  # index,label,prediction,prob_positive
# The int8 variant's, same columns and examples (trainers/models/compressed.py); runs before it have none.
INT8_PREDICTIONS_ARTIFACT = "predictions/test_predictions_int8.csv"
RESULT_FILE = "result.json"                 # key, name, run_id, final metrics, history: marks "done"
# The run's tag naming its trial's folder: predict and the demo load the model, and its int8
# variant's model.int8.safetensors, from there while it exists (then from the MLflow model).
MODEL_DIR_TAG = "model_dir"
