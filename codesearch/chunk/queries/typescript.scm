(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(object (method_definition name: (_) @name.member) @definition.function)
(method_definition name: (_) @name) @definition.function
(class_declaration name: (_) @name) @definition.class
(abstract_class_declaration name: (_) @name) @definition.class
(interface_declaration name: (_) @name) @definition.class
(enum_declaration name: (_) @name) @definition.class
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(public_field_definition
  name: (_) @name
  value: [(arrow_function) (function_expression)]) @definition.function

; Functions bound by assignment, object literal or default export: code.py builds their names
; (`res.json`, `Layer.prototype.match`, `exports.f` -> `f`, `api.get`).
(expression_statement
  (assignment_expression
    left: [(member_expression) (identifier)] @name.assigned
    right: [
      (arrow_function) (function_expression) (generator_function)
      (assignment_expression
        right: [(arrow_function) (function_expression) (generator_function)])
    ])) @definition.function
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: (assignment_expression
      right: [(arrow_function) (function_expression) (generator_function)]))) @definition.function
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: (assignment_expression
      right: [(arrow_function) (function_expression) (generator_function)]))) @definition.function
(pair
  key: (_) @name.member
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.function
(export_statement
  value: [(arrow_function) (function_expression) (generator_function)] @name.default @definition.function)
