"""Meta-training: learning, from many labelled tasks, what makes few-shot classification of new labels work.

Never imported by ``import fewshot`` or by plain :class:`fewshot.FewShotClassifier` use; the classifier
imports :mod:`fewshot.meta.adapted` only when ``adapt`` is not ``"none"``.

- :mod:`~fewshot.meta.episodes`: N-way K-shot episode and pair samplers;
- :mod:`~fewshot.meta.maml`: MAML / FOMAML / Reptile, one inner loop each (torch.func);
- :mod:`~fewshot.meta.adapted`: the saved inner loop run at fit time (``adapt=...``);
- :mod:`~fewshot.meta.trainer`: the one outer training loop and the trainers that drive it;
- :mod:`~fewshot.meta.distill`: training the encoder's top layers (``fewshot train --encoder``);
- :mod:`~fewshot.meta.training_args`: the configs (seeds and hyperparameters);
- :mod:`~fewshot.meta.data`: labelled CSVs and the embedding cache;
- :mod:`~fewshot.meta.model_card`: writing a model folder and its card;
- :mod:`~fewshot.meta.train_command`: the ``fewshot train`` command.

The losses they train with (contrastive, Matching-Network, prototypical, distillation...) are in
:mod:`fewshot.losses`, one module each.
"""
