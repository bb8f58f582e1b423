"""Fine-tuning: adapt a model to the user's own documents, measure it with jisik's own evaluation, serve it.

One module per job, all behind the ``tune`` extra (``pip install 'jisik[tune]'``) and imported lazily:

- :mod:`~jisik.tune.data`: training-file formats (chat ``messages``, prompt/completion, prompt/chosen/rejected),
  validation by line number, RAG-style examples built from a knowledge base, leak-free splits;
- :mod:`~jisik.tune.sft`: supervised fine-tuning with LoRA/QLoRA (PEFT + TRL's ``SFTTrainer``);
- :mod:`~jisik.tune.preference`: DPO, reward models and rejection sampling;
- :mod:`~jisik.tune.export`: merging adapters, GGUF through llama.cpp's converter, Ollama Modelfiles;
- :mod:`~jisik.tune.classify`: sequence classifiers (full or LoRA) reported with :mod:`jisik.evaluate.metrics`;
- :mod:`~jisik.tune.embedder`: the e5 embedder adapted to a collection without labels;
- :mod:`~jisik.tune.hardware`, :mod:`~jisik.tune.tracking`, :mod:`~jisik.tune.runs`, :mod:`~jisik.tune.report`:
  devices, precision and estimates; metrics to CSV/TensorBoard/W&B and the NaN guard; run folders; HTML reports.
"""
