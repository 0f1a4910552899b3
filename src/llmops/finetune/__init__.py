"""Training-set building and fine-tuning backends (local LoRA with peft; OpenAI jobs API).

Modules: ``trainset`` (``build_trainset``), ``lora``, ``dpo``, ``backend``, ``registry``, ``openai_jobs``, ...

Importing the package imports none of its modules: any ``llmops.finetune.<module>`` import runs this file first,
so re-exports here would make every such import (and each DVC stage that makes one) depend on them all.
"""
